//! The fixed words of messages in each locale, and the labels of metrics.

use super::Locale;
use std::borrow::Cow;

/// Fixed words of one locale.
pub(crate) struct Texts {
    pub colon: &'static str,
    pub note: &'static str,
    pub time: &'static str,
    pub since: &'static str,
    pub duration: &'static str,
    pub url: &'static str,
    pub incident: &'static str,
    pub failing: &'static str,
    pub was_failing: &'static str,
    pub message: &'static str,
    pub locations: &'static str,
    pub location: &'static str,
    pub region: &'static str,
    pub isp: &'static str,
    pub result: &'static str,
    pub error: &'static str,
    pub ok: &'static str,
    pub fail: &'static str,
    pub missing: &'static str,
}

const EN: Texts = Texts {
    colon: ":",
    note: "Note",
    time: "Time",
    since: "Down since",
    duration: "Duration",
    url: "URL",
    incident: "Incident",
    failing: "Failing conditions",
    was_failing: "Was failing",
    message: "Message",
    locations: "Locations",
    location: "Location",
    region: "Region",
    isp: "ISP",
    result: "Result",
    error: "Error",
    ok: "OK",
    fail: "FAIL",
    missing: "MISSING",
};

const ZH_CN: Texts = Texts {
    colon: "：",
    note: "注意",
    time: "时间",
    since: "故障开始",
    duration: "持续时长",
    url: "地址",
    incident: "事件编号",
    failing: "失败条件",
    was_failing: "故障原因",
    message: "内容",
    locations: "各地探测",
    location: "位置",
    region: "地区",
    isp: "运营商",
    result: "结果",
    error: "错误",
    ok: "正常",
    fail: "异常",
    missing: "未上报",
};

impl Texts {
    /// The colon between a label and its text: `: ` or `：` (the full-width one carries its
    /// own space).
    pub fn colon_space(&self) -> &'static str {
        if self.colon == ":" { ": " } else { self.colon }
    }

    pub fn of(locale: Locale) -> &'static Texts {
        match locale {
            Locale::En => &EN,
            Locale::ZhCn => &ZH_CN,
        }
    }
}

/// The metrics with a label of their own: name, English, Chinese.
const METRICS: &[(&str, &str, &str)] = &[
    ("dns", "DNS", "DNS解析"),
    ("connect", "Connect", "连接耗时"),
    ("tls", "TLS", "TLS握手"),
    ("wait", "Wait", "等待响应"),
    ("download", "Download", "下载耗时"),
    ("ttfb", "TTFB", "首字节"),
    ("total", "Total", "总耗时"),
    ("status", "Status", "状态码"),
    ("size", "Size", "大小"),
    ("speed", "Speed", "速度"),
    ("cert_days", "Cert days", "证书剩余"),
    ("query", "Query", "查询耗时"),
];

/// The label of the metric `name` in `locale` (`connect` → `Connect` / `连接耗时`); a metric
/// without one is shown as written.
pub fn metric_label(name: &str, locale: Locale) -> Cow<'_, str> {
    match METRICS.iter().find(|(n, _, _)| *n == name) {
        Some((_, en, zh)) => Cow::Borrowed(match locale {
            Locale::En => en,
            Locale::ZhCn => zh,
        }),
        None => Cow::Borrowed(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels() {
        assert_eq!(metric_label("tls", Locale::ZhCn), "TLS握手");
        assert_eq!(metric_label("wait", Locale::En), "Wait");
        assert_eq!(metric_label("cert_days", Locale::ZhCn), "证书剩余");
        assert_eq!(metric_label("query", Locale::En), "Query");
        assert_eq!(metric_label("lag", Locale::ZhCn), "lag");
    }
}
