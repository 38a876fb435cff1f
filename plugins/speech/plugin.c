/* callpipe speech plugin: offline speech elements. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstspeechelements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (ttssrc, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipespeech,
    "Offline speech: flite text to speech", plugin_init, VERSION, GST_LICENSE,
    GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
