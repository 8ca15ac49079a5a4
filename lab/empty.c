// keeps a library with no sources yet linkable
int cameo_lab_empty_unit;
