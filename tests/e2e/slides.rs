//! `slides.write` and the `weekly-deck` skill with real Chromium: the PDF has one page per slide
//! and its text can be extracted (poppler's `pdfinfo`/`pdftotext`), a hostile title stays text in
//! the HTML deck (opened in Chromium: one script, the title literal), arrow keys move between
//! slides, and a screenshot of slide 1 is kept as an artifact.

use std::path::Path;
use std::process::Command;

use deskhand_fake_providers::FakeData;
use serde_json::Value;

use crate::connectors::Env;

const HOSTILE: &str = "<script>document.title='pwned'</script> Q4 & </style>";

fn deck_skill(ws: &Path) {
    let d = ws.join("skills/q4-deck");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(
        d.join("SKILL.md"),
        "---\nname: q4-deck\ndescription: A deck from Markdown.\n---\n# q4-deck\n",
    )
    .unwrap();
    let md = format!(
        "# {HOSTILE}\nThe quarter in three slides\n---\n## Done\n- shipped the hub\n- <img src=x onerror=\"document.title='pwned'\">\n\n![chart](img/p1.png)\n\nNote:\nthank the team\n---\n## Next\n| Item | Owner |\n|---|---|\n| Decks | Ada |\n"
    );
    let yaml = format!(
        "permissions:\n  workspace: [\"reports/**\"]\n  read: [\"img/**\"]\nsteps:\n  - id: deck\n    uses: slides.write\n    with:\n      path: reports/q4\n      markdown: {}\n",
        serde_json::to_string(&md).unwrap()
    );
    std::fs::write(d.join("skill.yaml"), yaml).unwrap();
    std::fs::create_dir_all(ws.join("img")).unwrap();
    std::fs::copy(crate::util::fixture("img/p1.png"), ws.join("img/p1.png")).unwrap();
}

/// `pdfinfo`'s page count and `pdftotext`'s text of a PDF.
fn pdf(path: &Path) -> (usize, String) {
    let info = Command::new("pdfinfo")
        .arg(path)
        .output()
        .expect("pdfinfo (poppler-utils)");
    assert!(
        info.status.success(),
        "{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let pages = String::from_utf8_lossy(&info.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Pages:").map(|n| n.trim().parse().unwrap()))
        .expect("pdfinfo says Pages:");
    let text = Command::new("pdftotext")
        .arg(path)
        .arg("-")
        .output()
        .unwrap();
    // Lines wrap where the slide is narrow: compare with runs of white space as one space.
    let text = String::from_utf8_lossy(&text.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    (pages, text)
}

/// The page size of a PDF in points (`Page size: 960 x 540 pts`).
fn page_size(path: &Path) -> (f64, f64) {
    let info = Command::new("pdfinfo").arg(path).output().unwrap();
    let out = String::from_utf8_lossy(&info.stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.starts_with("Page size:"))
        .unwrap()
        .to_string();
    let nums: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_markdown_deck_becomes_html_and_a_pdf_with_one_page_per_slide() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let ws = env.ws.path();
    deck_skill(ws);
    let (ok, out, err) = env.run(&["skills", "trust", "q4-deck", "--yes"]).await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = env.run(&["skills", "run", "q4-deck"]).await;
    assert!(ok, "{out}{err}");
    let (html, pdf_path) = (ws.join("reports/q4.html"), ws.join("reports/q4.pdf"));
    let (pages, text) = pdf(&pdf_path);
    assert_eq!(pages, 3, "one page per slide: {text}");
    for want in [
        "The quarter in three slides",
        "Done",
        "shipped the hub",
        "Next",
        "Decks",
        "Ada",
    ] {
        assert!(
            text.contains(want),
            "{want:?} not in the PDF's text: {text}"
        );
    }
    // The hostile title is text on the page, and its markup in the list too.
    // A long word may wrap anywhere on the slide: compare without white space.
    let squashed: String = text.split_whitespace().collect();
    assert!(
        squashed.contains("<script>document.title='pwned'</script>Q4&</style>"),
        "the title is not text on the page: {text}"
    );
    assert!(squashed.contains("<imgsrc=x"), "{text}");
    // 16:9: 13.333 × 7.5 in = 960 × 540 pt.
    let (w, h) = page_size(&pdf_path);
    assert!(
        (w - 960.0).abs() < 2.0 && (h - 540.0).abs() < 2.0,
        "{w} x {h}"
    );
    // Speaker notes are not printed.
    assert!(!text.contains("thank the team"), "{text}");

    // The HTML deck in Chromium: inert markup, one script (ours), the image inlined.
    let source = std::fs::read_to_string(&html).unwrap();
    assert!(!source.contains("src=\"img/") && source.contains("data:image/png;base64,"));
    assert!(
        !source.contains("http://") && !source.contains("https://"),
        "loads nothing"
    );
    let browser = deskhand_browser::Browser::launch(Default::default())
        .await
        .unwrap();
    let page = browser.new_page().await.unwrap();
    page.set_viewport(1280, 720, 1.0, false).await.unwrap();
    let site = deskhand_agent::site::StaticSite::serve(&ws.join("reports"))
        .await
        .unwrap();
    page.goto(&site.url("q4.html")).await.unwrap();
    let seen = page
        .eval("({title: document.title, scripts: document.scripts.length, imgs: document.querySelectorAll('img').length, on: document.querySelector('.slide.on').id, notes: document.querySelector('#s2 .notes').textContent})")
        .await
        .unwrap();
    assert_eq!(seen["title"], HOSTILE, "{seen}");
    assert_eq!(seen["scripts"], 1, "{seen}");
    assert_eq!(seen["imgs"], 1, "only the inlined chart image: {seen}");
    assert_eq!(seen["on"], "s1");
    assert_eq!(seen["notes"], "thank the team");
    let png = page
        .screenshot(&deskhand_browser::Shot::Viewport)
        .await
        .unwrap();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(artifacts.join("slide-1.png"), &png).unwrap();
    // The arrow keys move between slides; End goes to the last.
    let key = |k: &str| {
        format!("(dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}'}})), document.querySelector('.slide.on').id)")
    };
    assert_eq!(page.eval(&key("ArrowRight")).await.unwrap(), "s2");
    assert_eq!(page.eval(&key("End")).await.unwrap(), "s3");
    assert_eq!(page.eval(&key("ArrowRight")).await.unwrap(), "s3");
    assert_eq!(page.eval(&key("ArrowLeft")).await.unwrap(), "s2");
    assert_ne!(
        page.eval("document.title").await.unwrap(),
        Value::from("pwned")
    );
    browser.close().await.unwrap();

    // Written through the guard: audited, and undone by `deskhand undo`.
    let (ok, out, _) = env.run(&["jobs", "list", "--json"]).await;
    assert!(ok);
    let jobs: Value = serde_json::from_str(&out).unwrap();
    let id = jobs[0]["id"].as_str().unwrap().to_string();
    let (ok, out, err) = env.run(&["undo", &id]).await;
    assert!(ok, "{out}{err}");
    assert!(
        !html.exists() && !pdf_path.exists(),
        "undo removes the deck"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_deck_turns_the_status_report_into_slides() {
    let env = Env::start(FakeData::bundled().unwrap()).await;
    let (ok, out, err) = env.connect("google", &[]).await;
    assert!(ok, "{out}{err}");
    let (ok, out, err) = env
        .run(&["/weekly-deck", "date=2026-11-26", "tz=Europe/Berlin"])
        .await;
    assert!(ok, "{out}{err}");
    let reports = env.ws.path().join("reports");
    let deck = std::fs::read_dir(&reports)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("weekly-deck-")
                && p.extension().is_some_and(|x| x == "pdf")
        })
        .unwrap_or_else(|| panic!("no weekly deck PDF in reports/: {out}"));
    let (pages, text) = pdf(&deck);
    assert_eq!(pages, 4, "{text}");
    for want in [
        "Weekly status",
        "2026-11-26",
        "At a glance",
        "meeting(s) today",
        "In numbers",
        "Meetings",
        "Overdue",
        "Full report: reports/",
        "Workbook: reports/",
    ] {
        assert!(text.contains(want), "{want:?} not in the deck: {text}");
    }
}
