// paths.h — finding cameo's own files (configs/, tokenizers of the tiny preset) from any folder.
#pragma once
#include <stddef.h>
// writes the path of a file shipped with cameo (relative to the repository root): tried beside
// the executable's parent folder (build/cameo -> repo), then $CAMEO_HOME, then the working folder
int cameo_asset(char *out, size_t n, const char *rel, char *err, size_t errlen);
