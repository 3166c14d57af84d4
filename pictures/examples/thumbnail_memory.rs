//! The memory one thumbnail takes, measured in its own process (docs/performance.md,
//! "Attachments"):
//!
//! ```text
//! cargo run --release -p loopwork-pictures --example thumbnail_memory -- make photo.jpg 6000 4000
//! cargo run --release -p loopwork-pictures --example thumbnail_memory -- photo.jpg
//! ```
//!
//! `make` writes a camera-like JPEG (smooth, with grain, quality 90) of that size; the second
//! form reads one, makes its thumbnail and prints the process's peak memory (VmHWM) before and
//! after, and the time the thumbnail took.

fn peak_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("make") {
        let size = |i: usize| args.get(i).and_then(|a| a.parse::<u32>().ok()).expect("WIDTH HEIGHT");
        let (width, height) = (size(2), size(3));
        let mut seed = 1u32;
        let pixels = image::RgbImage::from_fn(width, height, |x, y| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let grain = (seed >> 29) as u8;
            image::Rgb([
                ((x * 255 / width) as u8).wrapping_add(grain),
                (y * 255 / height) as u8,
                140u8.wrapping_sub(grain),
            ])
        });
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90).encode_image(&pixels).expect("jpeg");
        std::fs::write(&args[1], out).expect("write");
        return;
    }
    let jpeg = std::fs::read(args.first().expect("a JPEG's path")).expect("read");
    let before = peak_mb();
    let started = std::time::Instant::now();
    let small = loopwork_pictures::thumbnail(&jpeg, "image/jpeg").expect("thumbnail");
    let took = started.elapsed();
    let thumb = image::load_from_memory(&small).expect("a JPEG");
    println!(
        "{{\"file_mb\": {:.2}, \"peak_mb_before\": {before:.1}, \"peak_mb_after\": {:.1}, \"thumbnail_ms\": {}, \"thumbnail\": [{}, {}]}}",
        jpeg.len() as f64 / 1e6,
        peak_mb(),
        took.as_millis(),
        thumb.width(),
        thumb.height()
    );
}
