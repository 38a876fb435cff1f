/* callpipe transcribe plugin: speech to text. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gsttranscribeelements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (transcribesink, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipetranscribe,
    "Speech to text: offline pocketsphinx or Amazon Transcribe streaming",
    plugin_init, VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
