// data_cli.h — `cameo data <build|demo|verify|stats|show|bench>`.
#pragma once
int data_cli(int argc, char **argv);
