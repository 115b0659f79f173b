-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
-- Options: report_interval=300, block_tcp=False, src_net=any, dst_net=any, sid_base=9310000, scan_count=10, scan_seconds=3600, strict_flags=False
--
-- Add to snort.lua, after any event_filter and event_queue it sets, to load the
-- Conficker P2P pack:
--   include 'snort3-snippet.lua'
-- and run Snort with the pack's folder on the script path and its rules:
--   snort -c snort.lua --script-path <pack>/snort3 -R <pack>/snort3/conficker-p2p.snort ...
-- (or ips = { include = '<pack>/snort3/conficker-p2p.snort' } in snort.lua).

-- Snort 3 rules carry no threshold: these filters report each UDP source once per
-- report_interval (300 s); the rules still drop every matching packet.
event_filter = event_filter or { }
for _, f in ipairs({
    { gid = 1, sid = 9310001, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Detected/udp
    { gid = 1, sid = 9310003, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Data_Transfer/udp
    { gid = 1, sid = 9310005, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Protection/udp
}) do
    table.insert(event_filter, f)
end

-- A packet that a drop rule and an alert rule both match logs both events: by default
-- Snort logs only the first action group (here the drop).
event_queue = event_queue or { }
event_queue.process_all_events = true
