/* Shared by the speech tests and the ASR benchmark: a fixed set of
 * customer-service sentences, audio made from them, and word error rate. */
#ifndef CP_SPEECH_TEST_UTIL_H
#define CP_SPEECH_TEST_UTIL_H

#include <glib.h>

G_BEGIN_DECLS

extern const gchar * const cp_test_sentences[];

gint16  *cp_test_speak           (const gchar   *text,
                                  guint          rate,
                                  gsize         *n_samples);
gint16  *cp_test_decimate_by_two (const gint16  *in,
                                  gsize          n_in,
                                  gsize         *n_out);
gint16  *cp_test_pad             (const gint16  *in,
                                  gsize          n_in,
                                  gsize          lead,
                                  gsize          tail,
                                  gdouble        noise_dbfs,
                                  gsize         *n_out);
void     cp_test_add_noise       (gint16        *samples,
                                  gsize          n,
                                  gdouble        noise_dbfs,
                                  guint32        seed);
gdouble  cp_test_word_errors     (const gchar   *reference,
                                  const gchar   *hypothesis,
                                  guint         *n_ref_words);

G_END_DECLS

#endif /* CP_SPEECH_TEST_UTIL_H */
