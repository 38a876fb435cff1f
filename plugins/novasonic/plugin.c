/* callpipe novasonic plugin: bidirectional speech-to-speech. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstnovasonicelements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  return GST_ELEMENT_REGISTER (novasonic, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipenovasonic,
    "Speech-to-speech voice bots: Amazon Nova Sonic", plugin_init, VERSION,
    GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
