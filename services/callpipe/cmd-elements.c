/* callpipe elements — which callpipe elements GStreamer can load. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "commands.h"

#include <gst/gst.h>
#include <stdio.h>

/* The element names DESIGN.md fixes; more join as they land. */
static const gchar *const element_names[] = {
    "kvsdemux",
    "kvssrc",
    "s3sink",
    "s3src",
    "transcribesink",
    "novasonic",
    "ttssrc",
    "callinterleave",
};

int
cp_cli_cmd_elements (int argc, char **argv)
{
  gsize i;
  guint found = 0;

  if (argc > 1) {
    fprintf (stderr, "usage: callpipe elements\n");
    return 2;
  }
  gst_init (NULL, NULL);
  for (i = 0; i < G_N_ELEMENTS (element_names); i++) {
    GstElementFactory *f = gst_element_factory_find (element_names[i]);

    if (f == NULL) {
      printf ("%-16s (not built yet)\n", element_names[i]);
      continue;
    }
    printf ("%-16s %s\n", element_names[i],
        gst_element_factory_get_metadata (f, GST_ELEMENT_METADATA_LONGNAME));
    gst_object_unref (f);
    found++;
  }
  printf ("%u of %u callpipe elements available\n", found,
      (guint) G_N_ELEMENTS (element_names));
  return 0;
}
