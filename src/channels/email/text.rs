//! Pure text work on email: mailboxes, header blocks, Message-ID lists, subjects, quoted-reply
//! trimming and the HTML version of an outbound text. No I/O, so all of it is unit-tested here.

/// `"Alice Doe" <Alice@Example.com>` → (`Alice Doe`, `alice@example.com`); also bare and
/// `<…>` forms. The address is lowercased so one person always matches one binding.
pub fn parse_mailbox(s: &str) -> Option<(String, String)> {
    let s = s.trim();
    let (name, addr) = match (s.rfind('<'), s.rfind('>')) {
        (Some(open), Some(close)) if open < close => (s[..open].trim(), s[open + 1..close].trim()),
        _ => ("", s),
    };
    let name = name.trim_matches('"').trim().to_string();
    let addr = addr.to_ascii_lowercase();
    let (local, domain) = addr.split_once('@')?;
    let ok = |p: &str| !p.is_empty() && !p.contains(|c: char| c.is_whitespace() || "<>,;\"".contains(c));
    (ok(local) && ok(domain) && !domain.contains('@')).then_some((name, addr))
}

/// A raw header block (`Name: value` lines, folded continuation lines) as name/value pairs.
pub fn header_block(raw: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in raw.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// The `<…>` Message-IDs in a header value, in order.
pub fn message_ids(value: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(len) = rest[open..].find('>') else { break };
        let id = &rest[open..open + len + 1];
        if id.len() > 2 && id.len() <= 998 && !id.contains(char::is_whitespace) {
            ids.push(id.to_string());
        }
        rest = &rest[open + len + 1..];
    }
    ids
}

/// A subject without its `Re:` / `Fwd:` prefixes.
pub fn base_subject(subject: &str) -> &str {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let Some(p) = ["re:", "fwd:", "fw:", "aw:"].iter().find(|p| lower.starts_with(**p)) else { return s };
        s = s[p.len()..].trim_start();
    }
}

/// Whether `line` opens a quoted original: `On <date>, <someone> wrote:` (possibly continued
/// on `next`), or Outlook's `-----Original Message-----`.
fn opens_quote(line: &str, next: Option<&str>) -> bool {
    let l = line.trim();
    if l.starts_with("-----Original Message-----") || l.starts_with("________________________________") {
        return true;
    }
    if !l.starts_with("On ") {
        return false;
    }
    l.ends_with("wrote:") || next.is_some_and(|n| n.trim().ends_with("wrote:") && !l.ends_with('.'))
}

/// The new part of a reply: drops `>` quoted lines and everything from an attribution line
/// (`On … wrote:`) on. A message that is nothing but quote is kept whole.
pub fn trim_quoted(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if opens_quote(line, lines.get(i + 1).copied()) {
            break;
        }
        if !line.trim_start().starts_with('>') {
            kept.push(line);
        }
    }
    let trimmed = kept.join("\n").trim().to_string();
    if trimmed.is_empty() { text.trim().to_string() } else { trimmed }
}

/// A crude text version of an HTML body, for mail that came without a text part.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                // A line break at `<br>` and at the end of a block.
                let t = tag.trim_end_matches('/').trim().to_ascii_lowercase();
                let closes_block = ["/p", "/div", "/li", "/tr"].contains(&t.as_str());
                if closes_block || t == "br" || t.starts_with("br ") {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let decoded = out.replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"");
    decoded.replace("&#39;", "'").replace("&amp;", "&").trim().to_string()
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailboxes() {
        let p = |s| parse_mailbox(s);
        assert_eq!(p("\"Alice Doe\" <Alice@Example.com>"), Some(("Alice Doe".into(), "alice@example.com".into())));
        assert_eq!(p("Bob <bob@x.org>"), Some(("Bob".into(), "bob@x.org".into())));
        assert_eq!(p("carol@x.org"), Some(("".into(), "carol@x.org".into())));
        assert_eq!(p("<d@x.org>"), Some(("".into(), "d@x.org".into())));
        assert_eq!(p("nobody"), None);
        assert_eq!(p("a b@x.org"), None);
        assert_eq!(p(""), None);
    }

    #[test]
    fn headers_unfold_and_ids_split() {
        let h = header_block("Message-ID: <a@x>\r\nReferences: <r1@x>\r\n <r2@x>\r\nSubject: hi\r\n");
        assert_eq!(h[1], ("References".into(), "<r1@x> <r2@x>".into()));
        assert_eq!(message_ids(&h[1].1), vec!["<r1@x>", "<r2@x>"]);
        assert_eq!(message_ids("junk <> <ok@x> <broken"), vec!["<ok@x>"]);
    }

    #[test]
    fn subjects_lose_reply_prefixes() {
        assert_eq!(base_subject("Re: RE: Fwd: Order 42"), "Order 42");
        assert_eq!(base_subject("Order 42"), "Order 42");
    }

    #[test]
    fn quoted_replies_are_trimmed() {
        let gmail =
            "Thanks, that works!\n\nOn Mon, Jan 6, 2025 at 10:00 AM Support <s@x.com> wrote:\n> We are on it.\n";
        assert_eq!(trim_quoted(gmail), "Thanks, that works!");
        let wrapped =
            "Yes please.\r\n\r\nOn Mon, Jan 6, 2025 at 10:00 AM Acme Support\r\n<support@acme.test> wrote:\r\n\r\n> hi";
        assert_eq!(trim_quoted(wrapped), "Yes please.");
        assert_eq!(trim_quoted("top\n> quoted\nbottom"), "top\nbottom");
        assert_eq!(trim_quoted("Hi\n-----Original Message-----\nFrom: x"), "Hi");
        assert_eq!(trim_quoted("> only a quote"), "> only a quote");
        assert_eq!(trim_quoted("On time delivery please."), "On time delivery please.");
    }

    #[test]
    fn html_becomes_text() {
        assert_eq!(html_to_text("<p>Hello&nbsp;<b>you</b></p><p>a &amp; b</p>"), "Hello you\na & b");
        assert_eq!(escape_html("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
