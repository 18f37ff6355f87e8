/* ebb profile (tools/profile.c): read, symbolize and summarize a heap profile. */
#ifndef EBB_TOOLS_PROFILE_H
#define EBB_TOOLS_PROFILE_H
#include <stddef.h>
int ebb_profile_main(int argc, char **argv);
#endif
