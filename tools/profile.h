/* ebb profile (tools/profile.c): read, symbolize and summarize a heap profile. */
#ifndef EBB_TOOLS_PROFILE_H
#define EBB_TOOLS_PROFILE_H
#include <stddef.h>
int ebb_profile_main(int argc, char **argv);
/* The profile's flame graph (bytes allocated by call stack) as an HTML
 * section: an SVG, zoomed by a click.  Loads the profile: once per run. */
#include <stdio.h>
int ebb_profile_flame_html(FILE *out, const char *profile);
/* Text for HTML, in an element or an attribute's quotes (ebb.c's report too). */
void ebb_html_escape(FILE *f, const char *s);
#endif
