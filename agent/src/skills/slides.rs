//! `slides.write`: a deck from Markdown (slides split by `---` lines, speaker notes after `Note:`)
//! or a JSON outline (title, bullets, a table, an image from the workspace, a bar chart from data),
//! written as one self-contained HTML file (keyboard navigation, a print stylesheet, no resource
//! from anywhere: images inlined, CSP `default-src 'none'`) and as a PDF of it printed by our own
//! Chromium, one 16:9 slide per page. Every piece of text is escaped; Markdown's raw HTML is shown
//! as text, and links go only to http(s) and mail addresses.

use std::fmt::Write as _;

use base64::Engine;
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::args::{Line, Text};
use crate::guard::Guard;
use crate::runner::{StepCtx, StepError};

/// A slide's size in inches (16:9).
pub const PAGE_IN: (f64, f64) = (13.333, 7.5);
/// The largest image a deck takes in (it is inlined into the HTML).
const MAX_IMAGE: usize = 5 << 20;
/// The most slides a deck may have.
const MAX_SLIDES: usize = 200;

/// `slides.write`'s arguments: `markdown` or `outline`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SlidesArgs {
    /// Where the deck goes, without extension: `reports/weekly` writes reports/weekly.html and
    /// reports/weekly.pdf.
    path: Line,
    /// The deck in Markdown: a line `---` between slides, the first heading of a slide is its
    /// title, lines after a line `Note:` are the speaker's notes.
    #[serde(default)]
    markdown: Option<Text>,
    /// The deck as an outline, instead of Markdown.
    #[serde(default)]
    outline: Option<Outline>,
}

/// A deck as data.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct Outline {
    /// The deck's title (its title slide, and the document's title).
    #[serde(default)]
    pub title: String,
    /// A line under the title on the title slide.
    #[serde(default)]
    pub subtitle: String,
    /// The slides after the title slide.
    #[serde(default)]
    pub slides: Vec<OutlineSlide>,
}

/// One slide of an outline.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct OutlineSlide {
    /// Its title.
    #[serde(default)]
    pub title: String,
    /// Bullet points.
    #[serde(default)]
    pub bullets: Vec<String>,
    /// A table.
    #[serde(default)]
    pub table: Option<Table>,
    /// A workspace image (png, jpg, gif, webp, svg), shown inline.
    #[serde(default)]
    pub image: Option<String>,
    /// A bar chart.
    #[serde(default)]
    pub chart: Option<Chart>,
    /// The speaker's notes.
    #[serde(default)]
    pub notes: String,
}

/// A table: column names and rows of cells.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct Table {
    /// Column names.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Rows; cells may be text or numbers.
    #[serde(default)]
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// A bar chart: one bar per label.
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
pub struct Chart {
    /// What the chart shows.
    #[serde(default)]
    pub title: String,
    /// The bars' labels.
    pub labels: Vec<String>,
    /// The bars' values (as many as labels).
    pub values: Vec<f64>,
}

/// A deck written.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SlidesOut {
    /// The HTML deck.
    html: String,
    /// Its PDF, one slide per page.
    pdf: String,
    /// How many slides.
    slides: usize,
}

/// One slide, rendered: its title, its body as safe HTML, its notes as text.
#[derive(Debug, Clone, PartialEq)]
struct Slide {
    title: String,
    body: String,
    notes: String,
    /// The title slide (bigger type, centred).
    cover: bool,
}

/// `slides.write`: the HTML deck and its PDF.
pub(super) async fn write(g: Guard, a: SlidesArgs, _: StepCtx) -> Result<SlidesOut, StepError> {
    let base = a
        .path
        .as_str()
        .trim_end_matches(".html")
        .trim_end_matches(".pdf")
        .to_string();
    if base.is_empty() {
        return Err(StepError::Invalid(
            "slides.write: give a path such as reports/deck".into(),
        ));
    }
    let image = |path: &str| inline_image(&g, path);
    let (title, slides) = match (&a.markdown, &a.outline) {
        (Some(md), None) => from_markdown(&md.0, &image),
        (None, Some(o)) => from_outline(o, &image),
        _ => {
            return Err(StepError::Invalid(
                "slides.write takes `markdown` or `outline` (one of them)".into(),
            ))
        }
    };
    if slides.is_empty() {
        return Err(StepError::Invalid(
            "slides.write: the deck has no slides".into(),
        ));
    }
    if slides.len() > MAX_SLIDES {
        return Err(StepError::Invalid(format!(
            "slides.write: {} slides; at most {MAX_SLIDES}",
            slides.len()
        )));
    }
    let html = render(&title, &slides);
    let pdf = g.print_pdf(&html, PAGE_IN).await?;
    let (html_path, pdf_path) = (format!("{base}.html"), format!("{base}.pdf"));
    g.write_file(&html_path, html.into_bytes()).await?;
    g.write_file(&pdf_path, pdf).await?;
    Ok(SlidesOut {
        html: html_path,
        pdf: pdf_path,
        slides: slides.len(),
    })
}

/// A workspace image as a `data:` URL (read through the guard), or why not.
fn inline_image(g: &Guard, path: &str) -> Result<String, String> {
    let ext = path
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let mime = match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        // Inside <img>, an SVG's scripts never run.
        "svg" => "image/svg+xml",
        _ => {
            return Err(format!(
                "{path}: not an image this deck shows (png, jpg, gif, webp, svg)"
            ))
        }
    };
    let bytes = g.read_file(path).map_err(|e| e.to_string())?;
    if bytes.len() > MAX_IMAGE {
        return Err(format!("{path}: larger than {} MiB", MAX_IMAGE >> 20));
    }
    Ok(format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// HTML-escape text (element content and attribute values alike).
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The slides of a Markdown deck and its title (the first slide's).
fn from_markdown(md: &str, image: &dyn Fn(&str) -> Result<String, String>) -> (String, Vec<Slide>) {
    let mut chunks: Vec<Vec<&str>> = vec![Vec::new()];
    let mut fence = false;
    for line in md.lines() {
        if line.trim_start().starts_with("```") {
            fence = !fence;
        }
        if !fence && line.trim() == "---" {
            chunks.push(Vec::new());
        } else {
            chunks.last_mut().expect("one at least").push(line);
        }
    }
    let slides: Vec<Slide> = chunks
        .into_iter()
        .filter(|c| c.iter().any(|l| !l.trim().is_empty()))
        .map(|lines| {
            let split = lines
                .iter()
                .position(|l| matches!(l.trim(), "Note:" | "Notes:" | "note:" | "notes:"));
            let (body, notes) = match split {
                Some(i) => (&lines[..i], lines[i + 1..].join("\n")),
                None => (&lines[..], String::new()),
            };
            let title_at = body.iter().position(|l| l.trim_start().starts_with('#'));
            let title = title_at
                .map(|i| {
                    body[i]
                        .trim_start()
                        .trim_start_matches('#')
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            let rest: Vec<&str> = body
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != title_at)
                .map(|(_, l)| *l)
                .collect();
            Slide {
                title,
                body: markdown_html(&rest.join("\n"), image),
                notes: notes.trim().to_string(),
                cover: false,
            }
        })
        .collect();
    let title = slides.first().map(|s| s.title.clone()).unwrap_or_default();
    let mut slides = slides;
    if let Some(first) = slides.first_mut() {
        // A first slide with a title and at most a line under it is the cover.
        first.cover = first.body.matches("<p>").count() <= 1 && !first.body.contains("<li>");
    }
    (title, slides)
}

/// Markdown to HTML with every raw HTML piece turned into text, links only to http(s) and mail,
/// and images only from the workspace (inlined).
fn markdown_html(md: &str, image: &dyn Fn(&str) -> Result<String, String>) -> String {
    let mut events = Vec::new();
    let mut in_image: Option<(String, String)> = None; // (src or error, alt so far)
    let mut link_ok = Vec::new();
    for ev in Parser::new_ext(md, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH) {
        if let Some((_, alt)) = in_image.as_mut() {
            match ev {
                Event::End(TagEnd::Image) => {
                    let (src, alt) = in_image.take().expect("in an image");
                    let html = match src.strip_prefix("ok:") {
                        Some(data) => format!("<img src=\"{}\" alt=\"{}\">", esc(data), esc(&alt)),
                        None => format!(
                            "<span class=\"missing\">[{}: {}]</span>",
                            esc(&alt),
                            esc(&src)
                        ),
                    };
                    events.push(Event::Html(CowStr::from(html)));
                }
                Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Html(h) | Event::InlineHtml(h) => events.push(Event::Text(h)),
            Event::Start(Tag::Image { dest_url, .. }) => {
                let src = match image(&dest_url) {
                    Ok(data) => format!("ok:{data}"),
                    Err(why) => why,
                };
                in_image = Some((src, String::new()));
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => {
                let ok = ["http://", "https://", "mailto:"]
                    .iter()
                    .any(|p| dest_url.to_ascii_lowercase().starts_with(p));
                link_ok.push(ok);
                if ok {
                    events.push(Event::Start(Tag::Link {
                        link_type,
                        dest_url,
                        title,
                        id,
                    }));
                }
            }
            Event::End(TagEnd::Link) => {
                if link_ok.pop().unwrap_or(false) {
                    events.push(Event::End(TagEnd::Link));
                }
            }
            other => events.push(other),
        }
    }
    let mut out = String::new();
    pulldown_cmark::html::push_html(&mut out, events.into_iter());
    out
}

/// The slides of an outline: a cover, then one per outline slide.
fn from_outline(
    o: &Outline,
    image: &dyn Fn(&str) -> Result<String, String>,
) -> (String, Vec<Slide>) {
    let mut slides = Vec::new();
    if !o.title.is_empty() {
        let body = if o.subtitle.is_empty() {
            String::new()
        } else {
            format!("<p>{}</p>", esc(&o.subtitle))
        };
        slides.push(Slide {
            title: o.title.clone(),
            body,
            notes: String::new(),
            cover: true,
        });
    }
    for s in &o.slides {
        let mut body = String::new();
        if !s.bullets.is_empty() {
            body.push_str("<ul>");
            for b in &s.bullets {
                let _ = write!(body, "<li>{}</li>", esc(b));
            }
            body.push_str("</ul>");
        }
        if let Some(t) = &s.table {
            body.push_str(&table_html(t));
        }
        if let Some(c) = &s.chart {
            body.push_str(&chart_svg(c));
        }
        if let Some(path) = &s.image {
            match image(path) {
                Ok(data) => {
                    let _ = write!(body, "<img src=\"{}\" alt=\"{}\">", esc(&data), esc(path));
                }
                Err(why) => {
                    let _ = write!(body, "<p class=\"missing\">[{}]</p>", esc(&why));
                }
            }
        }
        slides.push(Slide {
            title: s.title.clone(),
            body,
            notes: s.notes.clone(),
            cover: false,
        });
    }
    (o.title.clone(), slides)
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn table_html(t: &Table) -> String {
    let mut s = String::from("<table>");
    if !t.columns.is_empty() {
        s.push_str("<thead><tr>");
        for c in &t.columns {
            let _ = write!(s, "<th>{}</th>", esc(c));
        }
        s.push_str("</tr></thead>");
    }
    s.push_str("<tbody>");
    for r in t.rows.iter().take(40) {
        s.push_str("<tr>");
        for c in r {
            let num = if c.is_number() { " class=\"n\"" } else { "" };
            let _ = write!(s, "<td{num}>{}</td>", esc(&cell(c)));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

/// A bar chart as inline SVG, scaled to the largest value.
fn chart_svg(c: &Chart) -> String {
    let n = c.labels.len().min(c.values.len()).min(24);
    let (w, h, pad, base) = (960.0, 360.0, 40.0, 300.0);
    let max = c.values[..n]
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let slot = (w - 2.0 * pad) / n.max(1) as f64;
    let mut s = format!(
        "<figure class=\"chart\"><svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\">",
        esc(&c.title)
    );
    let _ = write!(
        s,
        "<line x1=\"{pad}\" y1=\"{base}\" x2=\"{}\" y2=\"{base}\" class=\"axis\"/>",
        w - pad
    );
    for i in 0..n {
        let v = if c.values[i].is_finite() {
            c.values[i].max(0.0)
        } else {
            0.0
        };
        let bh = (v / max) * (base - pad);
        let x = pad + slot * i as f64 + slot * 0.15;
        let bw = slot * 0.7;
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bw:.1}\" height=\"{bh:.1}\" class=\"bar\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"v\">{}</text>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"l\">{}</text>",
            base - bh,
            x + bw / 2.0,
            base - bh - 8.0,
            esc(&trim_num(c.values[i])),
            x + bw / 2.0,
            base + 26.0,
            esc(&c.labels[i])
        );
    }
    s.push_str("</svg>");
    if !c.title.is_empty() {
        let _ = write!(s, "<figcaption>{}</figcaption>", esc(&c.title));
    }
    s.push_str("</figure>");
    s
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

const STYLE: &str = r#"
*{box-sizing:border-box}html,body{margin:0;background:#1d2129;color:#1b1f24;font:24px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.slide{width:13.333in;height:7.5in;margin:24px auto;padding:.6in .8in;background:#fff;display:flex;flex-direction:column;overflow:hidden;position:relative;overflow-wrap:anywhere}
.slide h1{font-size:44px;margin:0 0 .3in;color:#173f8a}.slide.cover{justify-content:center;text-align:center}
.slide.cover h1{font-size:64px}.slide.cover p{font-size:30px;color:#56606c}
.slide ul{margin:0;padding-left:1.1em}.slide li{margin:.08in 0}.slide img{max-width:100%;max-height:4.6in;object-fit:contain;align-self:center}
.slide table{border-collapse:collapse;font-size:20px;margin:.1in 0}.slide th,.slide td{border-bottom:1px solid #d6dae0;padding:6px 14px;text-align:left}
.slide td.n{text-align:right;font-variant-numeric:tabular-nums}.slide th{color:#56606c}
.slide pre{background:#f3f4f6;padding:12px;border-radius:8px;font-size:18px;white-space:pre-wrap}
.chart{margin:0}.chart svg{width:100%;max-height:4.4in}.chart .bar{fill:#2457d6}.chart .axis{stroke:#56606c}
.chart text{font-size:20px;text-anchor:middle;fill:#1b1f24}.chart figcaption{text-align:center;color:#56606c;font-size:18px}
.missing{color:#c42b2b}.num{position:absolute;right:.4in;bottom:.25in;font-size:16px;color:#9ca6b3}
.notes{display:none;position:absolute;left:0;right:0;bottom:0;max-height:40%;overflow:auto;background:#fffbe6;border-top:2px solid #e0a83a;padding:.15in .3in;font-size:18px;white-space:pre-wrap}
.show-notes .notes{display:block}
.js .slide{display:none;margin:0 auto}.js .slide.on{display:flex}
.js body{display:flex;align-items:center;justify-content:center;min-height:100vh}
@media screen{.js .slide.on{transform-origin:center;transform:scale(var(--fit,1))}}
@page{size:13.333in 7.5in;margin:0}
@media print{html,body,.js body{background:#fff;display:block;min-height:0}.slide,.js .slide{display:flex!important;margin:0;transform:none!important;break-after:page;page-break-after:always}
.slide:last-of-type{break-after:auto;page-break-after:auto}.notes{display:none!important}}
"#;

const SCRIPT: &str = r#"
(function(){var d=document.documentElement;d.className+=' js';var s=[].slice.call(document.querySelectorAll('.slide')),i=0;
function fit(){var w=innerWidth/(13.333*96),h=innerHeight/(7.5*96);d.style.setProperty('--fit',Math.min(w,h,1).toFixed(3));}
function go(n,quiet){i=Math.max(0,Math.min(s.length-1,n));s.forEach(function(e,k){e.classList.toggle('on',k===i);});if(!quiet)history.replaceState(null,'','#'+(i+1));}
addEventListener('keydown',function(e){var k=e.key;if(k==='ArrowRight'||k==='PageDown'||k===' '||k==='Enter')go(i+1);
else if(k==='ArrowLeft'||k==='PageUp'||k==='Backspace')go(i-1);else if(k==='Home')go(0);else if(k==='End')go(s.length-1);
else if(k==='n'||k==='N')d.classList.toggle('show-notes');else return;e.preventDefault();});
addEventListener('click',function(e){if(e.target.closest('a'))return;go(e.clientX<innerWidth/3?i-1:i+1);});
addEventListener('resize',fit);fit();go((parseInt(location.hash.slice(1),10)||1)-1,true);})();
"#;

/// The whole deck as one HTML file.
fn render(title: &str, slides: &[Slide]) -> String {
    let mut h = String::with_capacity(4096);
    h.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    // Nothing loads from anywhere: images are inlined, style and script are in this file.
    h.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = write!(
        h,
        "<title>{}</title><style>{STYLE}</style></head><body>",
        esc(title)
    );
    let n = slides.len();
    for (i, s) in slides.iter().enumerate() {
        let _ = write!(
            h,
            "<section class=\"slide{}\" id=\"s{}\" aria-label=\"Slide {} of {n}\">",
            if s.cover { " cover" } else { "" },
            i + 1,
            i + 1
        );
        if !s.title.is_empty() {
            let _ = write!(h, "<h1>{}</h1>", esc(&s.title));
        }
        h.push_str("<div class=\"body\">");
        h.push_str(&s.body);
        h.push_str("</div>");
        let _ = write!(h, "<span class=\"num\">{}/{n}</span>", i + 1);
        if !s.notes.is_empty() {
            let _ = write!(h, "<aside class=\"notes\">{}</aside>", esc(&s.notes));
        }
        h.push_str("</section>\n");
    }
    let _ = writeln!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_images(p: &str) -> Result<String, String> {
        Err(format!("{p}: no images in this test"))
    }

    #[test]
    fn markdown_slides_split_on_rules_with_titles_and_notes() {
        let md = "# Weekly\nNovember, week 48\n---\n## Done\n- shipped the hub\n- ```not a rule```\n\nNote:\nsay thanks\n---\n```\n---\n```\n";
        let (title, slides) = from_markdown(md, &no_images);
        assert_eq!(title, "Weekly");
        assert_eq!(slides.len(), 3, "{slides:#?}");
        assert!(slides[0].cover);
        assert_eq!(slides[1].title, "Done");
        assert!(slides[1].body.contains("<li>shipped the hub</li>"));
        assert_eq!(slides[1].notes, "say thanks");
        assert!(
            slides[2].body.contains("---"),
            "a rule in a code block stays"
        );
    }

    #[test]
    fn hostile_text_stays_text_everywhere() {
        let md = "# <script>alert(1)</script>\n\n<img src=x onerror=alert(2)>\n\n[x](javascript:alert(3)) [ok](https://example.com) <b onclick=z()>\n\n![pic](https://evil.example/p.png)";
        let (title, slides) = from_markdown(md, &no_images);
        let html = render(&title, &slides);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("<title>&lt;script&gt;alert(1)&lt;/script&gt;</title>"));
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
        assert!(!html.contains("javascript:"), "{html}");
        assert!(!html.contains("<b onclick"), "{html}");
        assert!(html.contains("<a href=\"https://example.com\">ok</a>"));
        assert!(!html.contains("evil.example/p.png\""), "{html}");
        // Only our own script, once.
        assert_eq!(html.matches("<script>").count(), 1);
        let o = Outline {
            title: "</style><script>x()</script>".into(),
            slides: vec![OutlineSlide {
                title: "\"><svg onload=y()>".into(),
                bullets: vec!["<b>bold?</b>".into()],
                table: Some(Table {
                    columns: vec!["<i>".into()],
                    rows: vec![vec![serde_json::json!("<u>"), serde_json::json!(3)]],
                }),
                chart: Some(Chart {
                    title: "<t>".into(),
                    labels: vec!["<l>".into()],
                    values: vec![2.0],
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let (title, slides) = from_outline(&o, &no_images);
        let html = render(&title, &slides);
        for bad in [
            "<b>bold",
            "<svg onload",
            "<i>",
            "<u>",
            "<l>",
            "<t>",
            "</style><script>",
        ] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }

    #[test]
    fn an_outline_gives_a_cover_then_its_slides_with_table_chart_and_image() {
        let o = Outline {
            title: "Q4".into(),
            subtitle: "numbers".into(),
            slides: vec![OutlineSlide {
                title: "Sales".into(),
                table: Some(Table {
                    columns: vec!["Region".into(), "Total".into()],
                    rows: vec![vec![serde_json::json!("North"), serde_json::json!(12)]],
                }),
                chart: Some(Chart {
                    title: "by region".into(),
                    labels: vec!["North".into(), "South".into()],
                    values: vec![12.0, 6.0],
                }),
                image: Some("charts/a.png".into()),
                notes: "slowly".into(),
                ..Default::default()
            }],
        };
        let img = |p: &str| Ok(format!("data:image/png;base64,{}", p.len()));
        let (title, slides) = from_outline(&o, &img);
        assert_eq!((title.as_str(), slides.len()), ("Q4", 2));
        assert!(slides[0].cover);
        let b = &slides[1].body;
        assert!(b.contains("<td class=\"n\">12</td>"));
        assert_eq!(b.matches("<rect").count(), 2);
        assert!(b.contains("<img src=\"data:image/png;base64,12\""));
        let html = render(&title, &slides);
        assert!(html.contains("aria-label=\"Slide 2 of 2\""));
        assert!(html.contains("<aside class=\"notes\">slowly</aside>"));
    }
}
