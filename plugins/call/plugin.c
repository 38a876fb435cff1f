/* callpipe call plugin: elements that shape a call's media. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcallelements.h"

static gboolean
plugin_init (GstPlugin *plugin)
{
  gboolean ret = FALSE;

  ret |= GST_ELEMENT_REGISTER (callinterleave, plugin);
  return ret;
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, callpipecall,
    "Call media: the caller and the bot as one stereo recording", plugin_init,
    VERSION, GST_LICENSE, GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
