// op_table.c — the one list of every differentiable op (name + backward rule). Each ops_*.c
// file holds its rows beside the forward code; this joins them so tests and tools can walk all.
#include <string.h>
#include "autograd/autograd.h"

extern const cm_opdef *const ops_elementwise_table[], *const ops_shape_table[], *const ops_matmul_table[],
    *const ops_norm_table[], *const ops_attention_table[], *const ops_cond_table[], *const ops_image_table[],
    *const ops_reduce_table[], *const ops_mlp_table[], *const ops_heads_table[];
const cm_opdef *autograd_recompute_opdef(void);

static const cm_opdef *const *const groups[] = {ops_elementwise_table, ops_shape_table, ops_matmul_table, ops_norm_table,
                                                ops_attention_table, ops_cond_table, ops_image_table, ops_reduce_table,
                                                ops_mlp_table, ops_heads_table};

// calls fn for every op in the table
void op_table_each(void (*fn)(const cm_opdef *op, void *ctx), void *ctx) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (int i = 0; groups[g][i]; i++) fn(groups[g][i], ctx);
    fn(autograd_recompute_opdef(), ctx);
}

const cm_opdef *op_table_find(const char *name) {
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++)
        for (int i = 0; groups[g][i]; i++)
            if (!strcmp(groups[g][i]->name, name)) return groups[g][i];
    return strcmp(name, "recompute") ? NULL : autograd_recompute_opdef();
}
