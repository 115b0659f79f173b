-- Generated from conficker-p2p.yaml by `cfp2p render`; do not edit: change the spec and render.
-- Options: report_interval=300, block_tcp=False, src_net=any, dst_net=any, sid_base=9310000, scan_count=10, scan_seconds=3600, strict_flags=False
--
-- A standalone Snort 3 configuration for the pack alone (the tests run with it):
--   snort -c snort3/snort.lua --script-path snort3 -R snort3/conficker-p2p.snort -r IN.pcap -A alert_json
-- Flow tracking and IP defragmentation, the pack's snippet, its classtypes, JSON alerts
-- (with msg and class) to a file.
stream = { }
stream_ip = { }
stream_icmp = { }
stream_tcp = { }
stream_udp = { }

include 'snort3-snippet.lua'

-- The rules' classtypes (a stock snort.lua has them from snort_defaults.lua).
classifications =
{
    { name = 'trojan-activity', priority = 1, text = 'trojan-activity' },
}

alert_json =
{
    file = true,
    fields = 'timestamp pkt_num proto pkt_gen pkt_len dir src_ap dst_ap rule action msg class priority',
}
