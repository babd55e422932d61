/*
 * GET /healthz (the process answers) and GET /readyz (it can serve: the
 * command connection to Redis is up and the subscription to rv:events
 * holds). Neither needs a token.
 */
#include "api/api.h"

void api_healthz(struct api_call *call)
{
    api_reply_json(call, 200, json_pack("{s:s}", "status", "ok"));
}

void api_readyz(struct api_call *call)
{
    struct api *api = call->api;
    bool connected = rv_rasync_connected(api->redis);
    bool subscribed = api_events_subscribed(api->events);
    if (connected && subscribed) {
        api_reply_json(call, 200, json_pack("{s:s}", "status", "ready"));
        return;
    }
    api_reply_error(call, 503, "unavailable",
                    "not ready: Redis %s, events %s",
                    connected ? "connected" : "unreachable",
                    subscribed ? "subscribed" : "not subscribed");
}
