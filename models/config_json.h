// config_json.h — the transformers / diffusers config.json that sits beside a model's weights,
// read for the few numbers the shapes do not tell (attention heads, eos id, norm groups, ...).
// defines: cjson_beside, cjson_number.
#pragma once
#include <cjson/cJSON.h>

// the parsed config.json in weights_path's folder (weights_path: a weights file, or a folder);
// NULL when there is none or it does not parse. The caller frees it with cJSON_Delete.
cJSON *cjson_beside(const char *weights_path);
// the number j[section][key] when j has that section (a full CLIPModel / SiglipModel config nests
// the tower's under "text_config" / "vision_config"), else j[key]; def when absent or not a number.
// section may be NULL; j may be NULL (def).
double cjson_number(const cJSON *j, const char *section, const char *key, double def);
