// detect.c — a needed tensor of the models' shape detection, or the message saying why not.
#include "models/detect.h"

#include <stdio.h>

const st_entry *detect_need(const st_index *ix, const char *name, int ndim, const char *what, char *err, size_t errlen) {
    const st_entry *e = st_index_find(ix, name);
    if (!e) snprintf(err, errlen, "not %s: no tensor \"%s\"", what, name);
    else if (e->ndim != ndim) {
        snprintf(err, errlen, "%s: expected %d dims, found %d", name, ndim, e->ndim);
        e = NULL;
    }
    return e;
}
