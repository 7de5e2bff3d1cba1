#!/usr/bin/env python3
"""Generate realistic shop listing pages for the extraction benchmark.

    python3 bench/gen_listing.py N OUTDIR

Writes OUTDIR/page-00001.html ... page-NNNNN.html. Every page is a plausible
shop category page of roughly 40-60 KB: a <head> with inline CSS and JSON-LD,
a header with a ~40-link navigation menu, a facet sidebar, 24 `li.product`
items with the same structure as fixtures/sites/products/page-*.html, a pager
with `a.next` (absent on the last page) and a link-heavy footer.

The output is deterministic (each page has its own seeded random generator),
so the same N always gives byte-identical files. fixtures/sites/products/schema.yaml
applies unchanged.
"""

import os
import random
import sys
from html import escape

ITEMS_PER_PAGE = 24

ADJECTIVES = [
    "Walnut", "Linen", "Ceramic", "Wool", "Cast Iron", "Bamboo", "Leather", "Glass", "Merino", "Enamel",
    "Oak", "Cotton", "Stainless", "Rattan", "Stoneware", "Canvas", "Copper", "Beeswax", "Felt", "Marble",
    "Brass", "Waxed", "Pine", "Porcelain", "Ash Wood", "Recycled", "Cork", "Terracotta", "Alpaca", "Teak",
]
NOUNS = [
    "Desk Lamp", "Throw Pillow", "Pour-Over Set", "Hiking Socks", "Skillet", "Cutting Board", "Card Holder",
    "Storage Jar", "Beanie", "Camping Mug", "Wall Shelf", "Tea Towel", "Water Bottle", "Laundry Basket",
    "Dinner Plate", "Tote Bag", "Measuring Cups", "Candle", "Desk Pad", "Coaster Set", "Bottle Opener",
    "Napkin Set", "Serving Tray", "Notebook", "Tealights", "Planter", "Doormat", "Bread Bin", "Cheese Knife",
    "Salad Bowl", "Picture Frame", "Bookends", "Wine Rack", "Key Hook", "Spice Rack", "Table Runner",
]
VARIANTS = ["", "", "", " (2-pack)", " (set of 4)", " - Large", " - Small", " 26 cm", " XL", " Mini"]
COLOURS = ["natural", "charcoal", "sand", "forest green", "rust", "ivory", "slate blue", "ochre"]
TAGS = ["kitchen", "home", "outdoor", "office", "gift", "wood", "wool", "coffee", "storage", "lighting",
        "camping", "recycled", "handmade", "bestseller", "new", "sale", "eco", "bath"]
CATEGORIES = [
    ("Kitchen", ["Cookware", "Knives", "Cutting boards", "Storage", "Coffee & tea", "Tableware", "Linens"]),
    ("Living", ["Cushions", "Throws", "Candles", "Frames", "Vases", "Lighting", "Rugs"]),
    ("Outdoor", ["Camping", "Garden", "Picnic", "Socks", "Bottles"]),
    ("Office", ["Notebooks", "Desk pads", "Pens", "Organisers", "Lamps"]),
    ("Bath", ["Towels", "Soap", "Baskets", "Mirrors"]),
    ("Gifts", ["Under $25", "Under $50", "For hosts", "For cooks", "Gift cards"]),
    ("Brands", ["Nordlys", "Hygge Home", "Fjell", "Tre & Stein", "Kobber"]),
]
WORDS = (
    "crafted small batch durable everyday soft sturdy finish natural oiled hand made sustainably sourced "
    "timeless design easy care dishwasher safe gift ready warm light compact generous classic textured "
    "matte glazed brushed woven stitched reinforced lightweight breathable long lasting versatile"
).split()

CSS = """
  :root { --brand: #5b4636; --accent: #8a3b12; --muted: #8c8279; --bg: #faf7f2; --card: #fff; --line: #e4dccf; }
  * { box-sizing: border-box; }
  body { font-family: Georgia, 'Times New Roman', serif; margin: 0; background: var(--bg); color: #2e2a25; }
  a { color: inherit; }
  .topbar { background: #2e2a25; color: #d8cfc4; font-size: 12px; padding: 4px 24px; display: flex; justify-content: space-between; }
  .site-header { background: var(--brand); color: #fff; padding: 12px 24px; display: flex; align-items: center; gap: 24px; }
  .site-header .logo { font-size: 22px; font-weight: bold; letter-spacing: .02em; text-decoration: none; }
  .site-header form { margin-left: auto; }
  .site-header input[type=search] { padding: 6px 10px; border-radius: 16px; border: 0; width: 260px; }
  nav.mega { background: #fff; border-bottom: 1px solid var(--line); padding: 0 24px; }
  nav.mega > ul { list-style: none; margin: 0; padding: 0; display: flex; gap: 4px; flex-wrap: wrap; }
  nav.mega > ul > li { position: relative; padding: 10px 12px; }
  nav.mega > ul > li > ul { display: none; position: absolute; top: 100%; left: 0; background: #fff; list-style: none;
                            padding: 8px 12px; border: 1px solid var(--line); min-width: 180px; z-index: 5; }
  nav.mega > ul > li:hover > ul { display: block; }
  nav.mega a { text-decoration: none; font-size: 14px; }
  .breadcrumbs { font-size: 12px; color: var(--muted); padding: 10px 24px; }
  .layout { display: grid; grid-template-columns: 220px 1fr; gap: 24px; padding: 0 24px 24px; }
  aside.facets h3 { font-size: 14px; margin: 16px 0 6px; text-transform: uppercase; letter-spacing: .05em; }
  aside.facets ul { list-style: none; padding: 0; margin: 0; font-size: 13px; }
  aside.facets li { padding: 2px 0; }
  .toolbar { display: flex; justify-content: space-between; align-items: center; font-size: 13px; color: var(--muted); }
  #products { list-style: none; padding: 0; display: grid; grid-template-columns: repeat(3, 1fr); gap: 14px; }
  .product { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px; display: flex;
             flex-direction: column; gap: 4px; position: relative; }
  .product img { width: 100%; height: auto; aspect-ratio: 4 / 3; object-fit: cover; border-radius: 4px; background: #eee; }
  .product .badge { position: absolute; top: 8px; left: 8px; background: var(--accent); color: #fff; font-size: 11px;
                    padding: 2px 6px; border-radius: 3px; }
  .product .title { font-weight: bold; color: var(--brand); text-decoration: none; }
  .product .price { color: var(--accent); font-size: 16px; }
  .product .was { color: var(--muted); font-size: 12px; margin-left: 6px; }
  .product .rating { font-size: 12px; color: #c9a227; }
  .product .rating span { color: var(--muted); }
  .product .desc { font-size: 12px; color: #5d554d; line-height: 1.4; margin: 2px 0; }
  .product .tags { list-style: none; padding: 0; margin: 2px 0; display: flex; gap: 4px; flex-wrap: wrap; }
  .product .tag { font-size: 11px; background: #efe6d8; padding: 1px 6px; border-radius: 8px; }
  .product .sku { font-size: 11px; color: #999; font-family: monospace; }
  .product form button { margin-top: 6px; padding: 6px; background: var(--brand); color: #fff; border: 0; border-radius: 4px; }
  .pager { display: flex; gap: 8px; justify-content: center; padding: 18px 0; font-size: 14px; }
  .pager a, .pager span { padding: 4px 10px; border: 1px solid var(--line); border-radius: 4px; text-decoration: none; }
  .pager .current { background: var(--brand); color: #fff; }
  footer.site-footer { background: #2e2a25; color: #d8cfc4; padding: 24px; font-size: 13px; }
  footer.site-footer .cols { display: grid; grid-template-columns: repeat(4, 1fr); gap: 24px; }
  footer.site-footer ul { list-style: none; padding: 0; }
  footer.site-footer h4 { color: #fff; }
  footer.site-footer .legal { border-top: 1px solid #4a443d; margin-top: 16px; padding-top: 12px; font-size: 11px; }
  @media (max-width: 900px) { .layout { grid-template-columns: 1fr; } #products { grid-template-columns: repeat(2, 1fr); } }
"""


def slug(text):
    out = []
    for ch in text.lower():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def sentence(rng, lo, hi):
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return (" ".join(words)).capitalize() + "."


def product(rng, n):
    name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS)}{rng.choice(VARIANTS)}"
    cents = rng.randint(495, 24900)
    price = f"${cents // 100:,}.{cents % 100:02d}"
    on_sale = rng.random() < 0.2
    tags = rng.sample(TAGS, rng.choice([0, 1, 1, 2, 2, 3]))
    has_img = rng.random() < 0.8
    rating = rng.randint(25, 50) / 10
    reviews = rng.randint(0, 420)
    colour = rng.choice(COLOURS)
    url = f"/products/{slug(name)}-{n}.html"
    title = escape(name, quote=False)
    if rng.random() < 0.1:  # some templates leave whitespace inside the title
        title = f"\n              {title}\n            "
    lines = [f'        <li class="product" data-product-id="{n}" data-colour="{colour}">']
    if on_sale:
        lines.append('          <span class="badge">Sale</span>')
    if has_img:
        lines.append(
            f'          <a href="{url}" class="thumb" tabindex="-1"><img src="/img/catalog/{n % 997:04d}-{slug(colour)}.jpg"'
            f' alt="" loading="lazy" width="320" height="240"></a>'
        )
    lines.append(f'          <a class="title" href="{url}">{title}</a>')
    stars = "\u2605" * int(rating) + "\u2606" * (5 - int(rating))
    lines.append(f'          <div class="rating" title="{rating} out of 5">{stars} <span>({reviews})</span></div>')
    was = ""
    if on_sale:
        old = cents + rng.randint(200, 4000)
        was = f' <s class="was">${old // 100:,}.{old % 100:02d}</s>'
    lines.append(f'          <div class="prices"><span class="price">{price}</span>{was}</div>')
    lines.append(f'          <p class="desc">{escape(sentence(rng, 14, 28) + " " + sentence(rng, 10, 22), quote=False)} Colour: {colour}.</p>')
    if tags:
        lines.append('          <ul class="tags">' + "".join(f'<li class="tag">{t}</li>' for t in tags) + "</ul>")
    else:
        lines.append('          <ul class="tags"></ul>')
    lines.append(f'          <span class="sku">SKU-{n:06d}</span>')
    lines.append(
        '          <form action="/cart/add" method="post"><input type="hidden" name="sku" '
        f'value="SKU-{n:06d}"><input type="hidden" name="qty" value="1">'
        f'<button type="submit" aria-label="Add {escape(name)} to cart">Add to cart</button></form>'
    )
    lines.append("        </li>")
    return "\n".join(lines)


def nav():
    parts = ['  <nav class="mega" aria-label="Main">', "    <ul>"]
    for cat, subs in CATEGORIES:
        parts.append(f'      <li><a href="/c/{slug(cat)}/">{escape(cat)}</a>')
        parts.append("        <ul>")
        for s in subs:
            parts.append(f'          <li><a href="/c/{slug(cat)}/{slug(s)}/">{escape(s)}</a></li>')
        parts.append("        </ul>")
        parts.append("      </li>")
    parts.append('      <li><a href="/new/">New in</a></li>')
    parts.append('      <li><a href="/sale/" style="color:#8a3b12">Sale</a></li>')
    parts.append("    </ul>")
    parts.append("  </nav>")
    return "\n".join(parts)


def facets(rng):
    parts = ['    <aside class="facets">']
    groups = [
        ("Category", [s for _, subs in CATEGORIES[:3] for s in subs][:10]),
        ("Colour", COLOURS),
        ("Price", ["Under $25", "$25 - $50", "$50 - $100", "$100 - $200", "Over $200"]),
        ("Material", ["Wood", "Wool", "Cotton", "Linen", "Ceramic", "Metal", "Glass"]),
    ]
    for title, opts in groups:
        parts.append(f"      <h3>{escape(title)}</h3>")
        parts.append("      <ul>")
        for o in opts:
            fid = f"f-{slug(title)}-{slug(o)}"
            parts.append(
                f'        <li><input type="checkbox" id="{fid}" name="{slug(title)}" value="{slug(o)}">'
                f' <label for="{fid}">{escape(o)}</label> <span class="count">({rng.randint(1, 240)})</span></li>'
            )
        parts.append("      </ul>")
    parts.append("    </aside>")
    return "\n".join(parts)


def footer(page):
    cols = [
        ("Shop", ["New in", "Bestsellers", "Gift cards", "Sale", "Brands", "Lookbook"]),
        ("Help", ["Shipping", "Returns", "Order status", "Size guide", "Care instructions", "Contact us"]),
        ("Company", ["About us", "Sustainability", "Careers", "Press", "Stores", "Affiliates"]),
        ("Follow", ["Newsletter", "Journal", "Instagram", "Pinterest", "Recipes", "Events"]),
    ]
    parts = ['<footer class="site-footer">', '  <div class="cols">']
    for title, links in cols:
        parts.append(f"    <div><h4>{title}</h4><ul>")
        for link in links:
            parts.append(f'      <li><a href="/{slug(title)}/{slug(link)}/">{escape(link)}</a></li>')
        parts.append("    </ul></div>")
    parts.append("  </div>")
    parts.append(
        '  <form class="newsletter" action="/newsletter" method="post"><label for="nl-email">Get 10% off your first'
        ' order</label> <input type="email" id="nl-email" name="email" placeholder="you@example.com">'
        " <button>Subscribe</button></form>"
    )
    parts.append(
        f'  <p class="legal">&copy; 2025 Hygge Supply AS &middot; Org. no. 912 345 678 &middot; Prices include VAT'
        f' &middot; <a href="/terms/">Terms</a> &middot; <a href="/privacy/">Privacy</a> &middot;'
        f' <a href="/cookies/">Cookies</a> &middot; page {page}</p>'
    )
    parts.append("</footer>")
    return "\n".join(parts)


def page_html(i, total):
    rng = random.Random(1_000_003 * i + 17)
    first = (i - 1) * ITEMS_PER_PAGE + 1
    items = [product(rng, n) for n in range(first, first + ITEMS_PER_PAGE)]
    pager = []
    if i > 1:
        pager.append(f'<a class="prev" href="page-{i - 1:05d}.html" rel="prev">&lsaquo; Previous</a>')
    for p in sorted({1, max(1, i - 1), i, min(total, i + 1), total}):
        if p == i:
            pager.append(f'<span class="current" aria-current="page">{p}</span>')
        else:
            pager.append(f'<a class="page" href="page-{p:05d}.html">{p}</a>')
    if i < total:
        pager.append(f'<a class="next" href="page-{i + 1:05d}.html" rel="next">Next &rsaquo;</a>')
    cat, subs = CATEGORIES[i % len(CATEGORIES)]
    sub = subs[i % len(subs)]
    ld = (
        '{"@context":"https://schema.org","@type":"CollectionPage","name":"%s - %s",'
        '"isPartOf":{"@type":"WebSite","name":"Hygge Supply"},"numberOfItems":%d}'
        % (cat, sub, ITEMS_PER_PAGE)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(sub)} - {escape(cat)} - page {i} of {total} | Hygge Supply</title>
<meta name="description" content="Shop {escape(sub.lower())} at Hygge Supply. Free shipping over $50, 60-day returns.">
<link rel="canonical" href="/c/{slug(cat)}/{slug(sub)}/?page={i}">
<style>{CSS}</style>
<script type="application/ld+json">{ld}</script>
</head>
<body>
<div class="topbar"><span>Free shipping over $50 &middot; 60-day returns</span><span><a href="/stores/">Find a store</a> &middot; <a href="/account/">Sign in</a></span></div>
<header class="site-header">
  <a class="logo" href="/">Hygge Supply</a>
  <form action="/search" role="search"><input type="search" name="q" placeholder="Search products" aria-label="Search products"></form>
  <a href="/wishlist/">Wishlist</a> <a href="/cart/">Cart (0)</a>
</header>
{nav()}
<div class="breadcrumbs"><a href="/">Home</a> &rsaquo; <a href="/c/{slug(cat)}/">{escape(cat)}</a> &rsaquo; {escape(sub)}</div>
<div class="layout">
{facets(rng)}
    <main>
      <h1>{escape(sub)}</h1>
      <div class="toolbar"><span>Showing {first}&ndash;{first + ITEMS_PER_PAGE - 1}</span>
        <label>Sort by <select name="sort"><option>Featured</option><option>Price: low to high</option><option>Price: high to low</option><option>Newest</option></select></label></div>
      <ul id="products">
{chr(10).join(items)}
      </ul>
      <nav class="pager" aria-label="Pagination">
        {(chr(10) + '        ').join(pager)}
      </nav>
    </main>
</div>
{footer(i)}
<script>
  document.querySelectorAll('.product form').forEach(function (f) {{
    f.addEventListener('submit', function (e) {{ e.preventDefault(); f.querySelector('button').textContent = 'Added'; }});
  }});
</script>
</body>
</html>
"""


def main(argv):
    if len(argv) != 3:
        print("usage: python3 bench/gen_listing.py N OUTDIR", file=sys.stderr)
        return 2
    try:
        n = int(argv[1])
    except ValueError:
        n = 0
    if n < 1:
        print(f"error: N must be a positive integer, got {argv[1]!r}", file=sys.stderr)
        return 2
    outdir = argv[2]
    os.makedirs(outdir, exist_ok=True)
    total_bytes = 0
    for i in range(1, n + 1):
        data = page_html(i, n).encode("utf-8")
        total_bytes += len(data)
        with open(os.path.join(outdir, f"page-{i:05d}.html"), "wb") as fh:
            fh.write(data)
    print(f"wrote {n} pages, {total_bytes} bytes ({total_bytes / n / 1024:.1f} KiB/page avg) to {outdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
