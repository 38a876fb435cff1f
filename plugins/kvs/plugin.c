/* callpipe kvs plugin: Amazon Kinesis Video Streams elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstkvselements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (kvsdemux, plugin);
  ret |= GST_ELEMENT_REGISTER (kvssrc, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipekvs,
    "Amazon Kinesis Video Streams and Amazon Connect live media", plugin_init,
    VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
