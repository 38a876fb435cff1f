/* Helpers shared by the callpiped tests. */
#ifndef CP_TEST_UTIL_H
#define CP_TEST_UTIL_H

#include <glib.h>

G_BEGIN_DECLS

void cp_test_remove_tree             (const gchar *path);
void cp_test_sanitizer_env_for_children (void);

G_END_DECLS

#endif /* CP_TEST_UTIL_H */
