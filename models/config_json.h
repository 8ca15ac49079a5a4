// config_json.h — the transformers / diffusers config.json that sits beside a model's weights,
// read for the few numbers the shapes do not tell (attention heads, eos id, norm groups, ...).
// defines: cjson_beside, cjson_number, cjson_clip_quick_gelu.
#pragma once
#include <cjson/cJSON.h>

// the parsed config.json in weights_path's folder (weights_path: a weights file, or a folder);
// NULL when there is none or it does not parse. The caller frees it with cJSON_Delete.
cJSON *cjson_beside(const char *weights_path);
// the number j[section][key] when j has that section (a full CLIPModel / SiglipModel config nests
// the tower's under "text_config" / "vision_config"), else j[key]; def when absent or not a number.
// section may be NULL; j may be NULL (def).
double cjson_number(const cJSON *j, const char *section, const char *key, double def);

// cameo's CLIP towers compute quick_gelu (OpenAI's CLIP, FLUX's text encoder; transformers' default
// when config.json names none): a CLIP trained with another activation (LAION's use "gelu") would
// load and compute wrongly without a word. 0, or -1 with err naming section.hidden_act and its value.
int cjson_clip_quick_gelu(const cJSON *j, const char *section, char *err, size_t errlen);
