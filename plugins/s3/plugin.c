/* callpipe s3 plugin: Amazon S3 (and S3-compatible) sink and source. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsts3elements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (s3sink, plugin);
  ret |= GST_ELEMENT_REGISTER (s3src, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipes3,
    "Amazon S3 multipart upload and ranged reads, on AWS and S3-compatible "
    "stores",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
