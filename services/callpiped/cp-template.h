/* callpiped — ${NAME} substitution for pipeline descriptions
 *
 * A pipeline file is gst-launch text with ${NAME} placeholders. Every name
 * must be one the supervisor knows, and each value is checked against the
 * rule of its kind and then written as a double-quoted gst-launch string,
 * so no value can add elements, links or properties. Expansion is a single
 * pass over the template: a value that itself contains "${...}" is never
 * expanded again. The one exception to quoting is an element variable
 * (${RECORDING_SINK}, ...): its value is one of a fixed set of element
 * names the supervisor picks (filesink or s3sink, filesrc or s3src), never
 * user text, and is written bare.
 */
#ifndef CP_TEMPLATE_H
#define CP_TEMPLATE_H

#include <glib.h>

G_BEGIN_DECLS

#define CP_TEMPLATE_ERROR (cp_template_error_quark ())

typedef enum
{
  CP_TEMPLATE_ERROR_SYNTAX,
  CP_TEMPLATE_ERROR_UNKNOWN_VARIABLE,
  CP_TEMPLATE_ERROR_MISSING_VARIABLE,
  CP_TEMPLATE_ERROR_INVALID_VALUE,
} CpTemplateError;

typedef enum
{
  CP_VAR_IDENTIFIER,   /* [A-Za-z0-9._:-]+ (contact ids, regions, model ids) */
  CP_VAR_ARN,          /* a KVS stream ARN, as the service's pattern */
  CP_VAR_INTEGER,      /* decimal digits, at most 64 */
  CP_VAR_PATH,         /* an absolute path without "." or ".." segments */
  CP_VAR_URI,          /* file, http, https or s3 URI without spaces */
  CP_VAR_LOCATION,     /* a CP_VAR_PATH or s3://bucket/key */
  CP_VAR_ELEMENT,      /* filesink, s3sink, filesrc or s3src: written bare */
} CpVarKind;

GQuark       cp_template_error_quark   (void);
gboolean     cp_template_variable_kind (const gchar *name, CpVarKind *kind,
                                        gboolean *may_be_empty);
gboolean     cp_template_check_value   (const gchar *name, const gchar *value,
                                        GError **error);
gchar       *cp_template_quote         (const gchar *value);
const gchar *cp_template_sample_value  (CpVarKind kind);
/* A value @name's elements accept (enum values included), for parsing a
 * description without a session. */
const gchar *cp_template_variable_sample (const gchar *name);
/* The region field of a valid stream ARN (a ${STREAM_ARN} value), or
 * NULL. */
gchar       *cp_template_arn_region    (const gchar *arn);
gchar      **cp_template_variables     (const gchar *tmpl, GError **error);
gchar       *cp_template_expand        (const gchar *tmpl, GHashTable *values,
                                        GError **error);
gchar       *cp_template_strip_comments (const gchar *text);

G_END_DECLS

#endif /* CP_TEMPLATE_H */
