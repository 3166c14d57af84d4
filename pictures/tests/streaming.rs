//! Stripping holds no more memory for a large picture than for a small one: 64 MiB of a JPEG's
//! scan data and of a PNG's pixel chunk pass through `strip_stream` from a reader that makes
//! them as they are read, to a writer that keeps nothing, while an allocator counts the most
//! memory held at once. Alone in its own test binary, so that nothing else allocates meanwhile.

use std::io::{BufReader, Read, Seek, SeekFrom, Write};

#[global_allocator]
static ALLOCATOR: peak_alloc::PeakAlloc = peak_alloc::PeakAlloc;

/// A header, then `body` bytes of a repeating pattern made as they are read, then a trailer.
struct Made {
    head: Vec<u8>,
    body: u64,
    tail: Vec<u8>,
    at: u64,
}

impl Read for Made {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head = self.head.len() as u64;
        let mut n = 0;
        while n < buf.len() {
            let at = self.at;
            let byte = if at < head {
                self.head[at as usize]
            } else if at < head + self.body {
                // Scan data never holds 0xFF unstuffed; this pattern never holds 0xFF at all.
                ((at * 7) % 251) as u8
            } else if let Some(&b) = self.tail.get((at - head - self.body) as usize) {
                b
            } else {
                break;
            };
            buf[n] = byte;
            n += 1;
            self.at += 1;
        }
        Ok(n)
    }
}

/// Counts what is written and keeps nothing (but the bytes the WebP path seeks back to write).
#[derive(Default)]
struct Counted {
    at: u64,
    end: u64,
}

impl Write for Counted {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.at += buf.len() as u64;
        self.end = self.end.max(self.at);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Counted {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.at = match to {
            SeekFrom::Start(at) => at,
            SeekFrom::End(by) => self.end.saturating_add_signed(by),
            SeekFrom::Current(by) => self.at.saturating_add_signed(by),
        };
        Ok(self.at)
    }
}

const BODY: u64 = 64 << 20;

fn jpeg_header() -> Vec<u8> {
    let picture = image::RgbImage::from_pixel(64, 32, image::Rgb([10, 90, 160]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new(&mut jpeg).encode_image(&picture).expect("jpeg");
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("a scan");
    let length = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    jpeg.truncate(sos + 2 + length);
    jpeg
}

fn png_header() -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    png.extend_from_slice(&13u32.to_be_bytes());
    png.extend_from_slice(b"IHDR");
    png.extend_from_slice(&[0, 0, 0x10, 0, 0, 0, 0x10, 0, 8, 2, 0, 0, 0]);
    png.extend_from_slice(&[0; 4]);
    png.extend_from_slice(&(BODY as u32).to_be_bytes());
    png.extend_from_slice(b"IDAT");
    png
}

fn peak_while(mime: &str, head: Vec<u8>, tail: Vec<u8>) -> (usize, u64) {
    let made = Made { head, body: BODY, tail, at: 0 };
    let reader = BufReader::with_capacity(64 << 10, made);
    let mut out = Counted::default();
    let before = ALLOCATOR.current_usage();
    ALLOCATOR.reset_peak_usage();
    let written = loopwork_pictures::strip_stream(mime, reader, &mut out).expect("stripped");
    (ALLOCATOR.peak_usage() - before, written)
}

#[test]
fn a_large_picture_is_stripped_in_the_memory_of_a_small_one() {
    let head = jpeg_header();
    let kept = head.len() as u64 + BODY + 2;
    let mut tail = vec![0xFF, 0xD9];
    tail.extend_from_slice(&[0xAB; 4096]);
    let (peak, written) = peak_while("image/jpeg", head, tail);
    assert_eq!(written, kept, "the scan data kept, the trailer not");
    assert!(peak < 256 << 10, "a 64 MiB JPEG held {peak} bytes at once");

    let head = png_header();
    let kept = head.len() as u64 + BODY + 4 + 12;
    let mut tail = vec![0; 4];
    tail.extend_from_slice(&[0, 0, 0, 0, b'I', b'E', b'N', b'D', 0xAE, 0x42, 0x60, 0x82]);
    let (peak, written) = peak_while("image/png", head, tail);
    assert_eq!(written, kept);
    assert!(peak < 256 << 10, "a 64 MiB PNG held {peak} bytes at once");
}
