-- The pub/sub channel of events: RV_CHANNEL_EVENTS of src/common/keys.h,
-- put in by tools/embed.c when the scripts are embedded.
local RV_CHANNEL_EVENTS = '${RV_CHANNEL_EVENTS}'
