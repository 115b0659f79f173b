-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
-- Options: report_interval=300, block_tcp=False, src_net=any, dst_net=any, sid_base=9310000, scan_count=10, scan_seconds=3600, strict_flags=False
--
-- Add to snort.lua, after any ips, search_engine, event_filter and event_queue it sets,
-- to load the Conficker P2P pack:
--   include 'snort3-snippet.lua'
-- and run Snort with the pack's folder on the script path and its rules:
--   snort -c snort.lua --script-path <pack>/snort3 -R <pack>/snort3/conficker-p2p.snort ...
-- (or ips = { include = '<pack>/snort3/conficker-p2p.snort' } in snort.lua).

-- The ports a Conficker host may listen on (those its port blacklist allows): the rules'
-- headers name them, on the listener's side.
ips = ips or { }
ips.variables = ips.variables or { }
ips.variables.ports = ips.variables.ports or { }
ips.variables.ports.CFP2P_PORTS = [[2112:2143 2240:2271 2496:2527 2560:2591 2656:2687 2816:2943 3136:3199 3488:3519 3552:3615 3648:3679 3744:3775 3808:3839 3904:3935 4032:4063 4128:4223 4256:4479 4576:4607 4704:4735 4768:4831 4928:4991 5312:5343 5568:5599 5728:5791 5856:5887 5952:5983 6016:6047 6144:6239 6272:6335 6400:6431 6464:6495 6720:6751 6816:6879 7072:7103 7136:7167 7200:7295 7328:7391 7424:7647 7680:7775 7840:7871 7936:7999 8032:8063 8128:8191 8352:8383 8448:8479 8512:8671 8704:8735 8768:8863 8896:8991 9120:9279 9312:9407 9472:9503 9536:9791 9824:9855 9920:9983 10080:10111 10144:10175 10208:10303 10336:10463 10496:11199 11296:11359 11392:11551 11584:12031 12096:12319 12352:12959 13024:13055 13088:13695 13728:13759 13792:14527 14592:14975 15008:15327 15360:15551 15584:15999 16032:16063 16096:16383 16416:16543 16576:16607 16640:18175 18208:19199 19232:19615 19648:19743 19776:19807 19840:19871 19904:19999 20032:20703 20736:22335 22368:23071 23104:23487 23520:24415 24448:24543 24576:24799 24864:25983 26016:26207 26240:26879 26912:26975 27040:27359 27392:27487 27520:27647 27680:27871 27968:27999 28032:28383 28416:28895 28928:28959 28992:29887 29952:29983 30016:30559 30592:31327 31360:31391 31424:31455 31488:32223 32256:32959 32992:33407 33440:34431 34464:36959 36992:37759 37792:39999 40032:40991 41024:43583 43616:47615 47648:47807 47840:48927 48960:49119 49152:51199 51232:63583 63616:65503]]

-- Snort files a rule by its ports only if it lists fewer than bleedover_port_limit
-- (1024 by default); past it the rule is tried on every packet, its header checked
-- after its options, so the option would run on every UDP and TCP packet. The rules
-- list 56384 ports. Other rules of yours with as many ports or fewer are filed
-- by port too.
search_engine = search_engine or { }
if (search_engine.bleedover_port_limit or 1024) < 56385 then
    search_engine.bleedover_port_limit = 56385
end

-- Snort 3 rules carry no threshold: these filters report each UDP source once per
-- report_interval (300 s); the rules still drop every matching packet.
event_filter = event_filter or { }
for _, f in ipairs({
    { gid = 1, sid = 9310001, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Detected/udp to_server
    { gid = 1000, sid = 9310001, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Detected/udp to_client
    { gid = 1, sid = 9310003, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Data_Transfer/udp to_server
    { gid = 1000, sid = 9310003, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Data_Transfer/udp to_client
    { gid = 1, sid = 9310005, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Protection/udp to_server
    { gid = 1000, sid = 9310005, type = 'limit', track = 'by_src', count = 1, seconds = 300 },  -- Conficker_P2P_Protection/udp to_client
}) do
    table.insert(event_filter, f)
end

-- A packet that a drop rule and an alert rule both match logs both events: by default
-- Snort logs only the first action group (here the drop).
event_queue = event_queue or { }
event_queue.process_all_events = true
