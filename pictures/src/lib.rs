//! Photos and signatures as the server keeps and serves them (docs/attachments.md): their
//! metadata stripped but for when the picture was taken and which way up it is, and a small
//! JPEG thumbnail for the desk's and the phones' lists. Functions over a reader and a writer
//! (`strip_stream` reads a picture once, front to back, holding no more of it than a segment:
//! see `strip.rs`) or over bytes in memory; the blob store calls them once, when an upload
//! completes (`server/src/blobs.rs`); the fuzz target `picture` feeds them any bytes.
//!
//! What goes: EXIF but for `DateTimeOriginal`, `OffsetTimeOriginal` and `Orientation` (so GPS
//! position, camera make and model, serial numbers, software, owner names), XMP, IPTC and
//! every other application segment or text chunk. What stays: the pixels, untouched (the bytes
//! are not re-encoded), the JFIF header, the ICC colour profile and Adobe's colour transform.

use std::io::{BufRead, Cursor, Seek};

use bytes::Bytes;

mod strip;
pub use strip::{MAX_EXIF_BYTES, StripError, strip_stream};

/// The longest edge of a thumbnail, in pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// The most memory one picture's decoded pixels may take for its thumbnail (a 48-megapixel
/// photo in 8-bit RGB takes 144 MiB).
const DECODE_MAX_BYTES: u64 = 160 << 20;
/// The widest or tallest picture a thumbnail is made of.
const DECODE_MAX_EDGE: u32 = 20_000;

/// The bytes of a picture of type `mime` (sniffed) without the metadata that can identify or
/// locate anyone; the bytes as they came for other types. The server streams instead
/// ([`strip_stream`]); this is the same over bytes in memory.
pub fn strip(bytes: Bytes, mime: &str) -> Result<Bytes, String> {
    let mut out = Cursor::new(Vec::with_capacity(bytes.len()));
    strip_stream(mime, &bytes[..], &mut out).map_err(|e| format!("unreadable {mime}: {e}"))?;
    Ok(Bytes::from(out.into_inner()))
}

/// An EXIF block holding only the tags kept, or none when the picture had none of them.
///
/// The block is not parsed whole: a crafted one can make thousands of entries share one large
/// value, and a general reader decodes every entry (gigabytes from a 64 KiB segment). Only the
/// kept tags are looked up, the first of each, with the type and size each must have
/// (`Orientation` a SHORT from 1 to 8, the times ASCII of at most 32 characters); what is
/// written is therefore at most a few hundred bytes, and reads back as itself.
fn kept_exif(tiff: &[u8]) -> Option<Vec<u8>> {
    let little = match tiff.get(..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b: [u8; 2] = tiff.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if little { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = tiff.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if little { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) })
    };
    // A directory's entries as (tag, type, count, where the value or its offset is).
    let entries = |at: usize| -> Vec<(u16, u16, u32, usize)> {
        let Some(count) = u16_at(at) else { return Vec::new() };
        (0..usize::from(count))
            .map_while(|i| {
                let entry = at + 2 + 12 * i;
                Some((u16_at(entry)?, u16_at(entry + 2)?, u32_at(entry + 4)?, entry + 8))
            })
            .collect()
    };
    const ASCII: u16 = 2;
    const SHORT: u16 = 3;
    const EXIF_IFD: u16 = 0x8769;
    let ascii = |count: u32, value_at: usize| -> Option<exif::Value> {
        if count == 0 || count > 33 {
            return None;
        }
        let at = if count <= 4 { value_at } else { u32_at(value_at)? as usize };
        let bytes = tiff.get(at..at.checked_add(count as usize)?)?;
        let text = bytes.split(|&b| b == 0).next().unwrap_or_default();
        (!text.is_empty() && text.iter().all(|b| b.is_ascii_graphic() || *b == b' '))
            .then(|| exif::Value::Ascii(vec![text.to_vec()]))
    };
    let mut kept: Vec<(exif::Tag, exif::Value)> = Vec::new();
    let mut exif_ifd = None;
    for (tag, kind, count, value_at) in entries(u32_at(4)? as usize) {
        match tag {
            0x0112 if kind == SHORT && count == 1 && !kept.iter().any(|(t, _)| *t == exif::Tag::Orientation) => {
                if let Some(turn) = u16_at(value_at).filter(|t| (1..=8).contains(t)) {
                    kept.push((exif::Tag::Orientation, exif::Value::Short(vec![turn])));
                }
            }
            EXIF_IFD if exif_ifd.is_none() && count == 1 => exif_ifd = u32_at(value_at),
            _ => {}
        }
    }
    if let Some(at) = exif_ifd {
        for (tag, kind, count, value_at) in entries(at as usize) {
            let tag = match tag {
                0x9003 => exif::Tag::DateTimeOriginal,
                0x9011 => exif::Tag::OffsetTimeOriginal,
                _ => continue,
            };
            if kind == ASCII
                && !kept.iter().any(|(t, _)| *t == tag)
                && let Some(value) = ascii(count, value_at)
            {
                kept.push((tag, value));
            }
        }
    }
    if kept.is_empty() {
        return None;
    }
    let fields: Vec<exif::Field> =
        kept.into_iter().map(|(tag, value)| exif::Field { tag, ifd_num: exif::In::PRIMARY, value }).collect();
    let mut writer = exif::experimental::Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, little).ok()?;
    Some(out.into_inner())
}

/// A JPEG thumbnail of a picture of type `mime`, at most [`THUMBNAIL_EDGE`] pixels on its
/// longer edge, turned the way its EXIF orientation says, transparency on white (a signature
/// is dark strokes on nothing).
pub fn thumbnail(bytes: &[u8], mime: &str) -> Result<Vec<u8>, String> {
    thumbnail_of(Cursor::new(bytes), mime)
}

/// The same, of a picture read from `picture` (a file the server wrote the stripped picture
/// to): read again from its start for each decoder tried.
pub fn thumbnail_of<R: BufRead + Seek>(mut picture: R, mime: &str) -> Result<Vec<u8>, String> {
    use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
    let format = match mime {
        "image/jpeg" => ImageFormat::Jpeg,
        "image/png" => ImageFormat::Png,
        "image/webp" => ImageFormat::WebP,
        _ => return Err(format!("no thumbnail of {mime}")),
    };
    let failed = |e: image::ImageError| format!("no thumbnail of this {mime}: {e}");
    // A baseline JPEG (what cameras write) is decoded at an eighth, a quarter or half its size,
    // as small as still covers the thumbnail: a 24-megapixel photo's pixels take 1 MB instead
    // of 72.
    if format == ImageFormat::Jpeg
        && let Some(scaled) = scaled_jpeg(&mut picture)?
    {
        return encode_thumbnail(scaled);
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(DECODE_MAX_BYTES);
    limits.max_image_width = Some(DECODE_MAX_EDGE);
    limits.max_image_height = Some(DECODE_MAX_EDGE);
    picture.rewind().map_err(|e| format!("no thumbnail: {e}"))?;
    let mut decoder = ImageReader::with_format(picture, format).into_decoder().map_err(failed)?;
    decoder.set_limits(limits.clone()).map_err(failed)?;
    // The decoders check the dimensions; the memory the pixels take is checked here.
    limits.reserve(decoder.total_bytes()).map_err(failed)?;
    let orientation = decoder.orientation().map_err(failed)?;
    let picture = DynamicImage::from_decoder(decoder).map_err(failed)?;
    encode_thumbnail((picture, orientation))
}

/// The most pixels a baseline JPEG's thumbnail is decoded from at a reduced scale (the work
/// still visits every block of the picture).
const SCALED_MAX_PIXELS: u64 = 100_000_000;

/// A baseline JPEG's pixels decoded at the smallest scale (1/8, 1/4, 1/2 or 1) that still covers
/// a thumbnail, with its orientation. `None` for what is left to the general path, which decodes
/// whole under its memory limit: a progressive or lossless JPEG (this decoder keeps their
/// coefficients or samples at full size whatever the scale), CMYK or 16-bit grey, and anything
/// this decoder cannot read.
fn scaled_jpeg(
    picture: &mut (impl BufRead + Seek),
) -> Result<Option<(image::DynamicImage, image::metadata::Orientation)>, String> {
    use jpeg_decoder::{CodingProcess, PixelFormat};
    picture.rewind().map_err(|e| format!("no thumbnail: {e}"))?;
    let mut decoder = jpeg_decoder::Decoder::new(&mut *picture);
    if decoder.read_info().is_err() {
        return Ok(None);
    }
    let Some(info) = decoder.info() else { return Ok(None) };
    let (full_width, full_height) = (u32::from(info.width), u32::from(info.height));
    if full_width > DECODE_MAX_EDGE || full_height > DECODE_MAX_EDGE {
        return Err(format!("no thumbnail of a {full_width}×{full_height} picture"));
    }
    if u64::from(full_width) * u64::from(full_height) > SCALED_MAX_PIXELS {
        return Err(format!("no thumbnail of a {full_width}×{full_height} picture: more than 100 megapixels"));
    }
    let grey = match (info.coding_process, info.pixel_format) {
        (CodingProcess::DctSequential, PixelFormat::L8) => true,
        (CodingProcess::DctSequential, PixelFormat::RGB24) => false,
        _ => return Ok(None),
    };
    let edge = THUMBNAIL_EDGE as u16;
    let Ok((width, height)) = decoder.scale(edge, edge) else { return Ok(None) };
    let Ok(pixels) = decoder.decode() else { return Ok(None) };
    let (width, height) = (u32::from(width), u32::from(height));
    let expected = width as usize * height as usize * if grey { 1 } else { 3 };
    if pixels.len() != expected {
        return Ok(None);
    }
    let decoded = if grey {
        image::GrayImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageRgb8)
    };
    Ok(decoded.map(|p| (p, orientation(picture))))
}

/// Which way up a JPEG is, by its EXIF (upright when it says nothing readable).
fn orientation(picture: &mut (impl BufRead + Seek)) -> image::metadata::Orientation {
    if picture.rewind().is_err() {
        return image::metadata::Orientation::NoTransforms;
    }
    exif::Reader::new()
        .read_from_container(picture)
        .ok()
        .and_then(|read| read.get_field(exif::Tag::Orientation, exif::In::PRIMARY)?.value.get_uint(0))
        .and_then(|n| u8::try_from(n).ok())
        .and_then(image::metadata::Orientation::from_exif)
        .unwrap_or(image::metadata::Orientation::NoTransforms)
}

/// The thumbnail of decoded pixels: made smaller, never larger; then turned (the small picture,
/// not the large one); transparency on white; JPEG at quality 80.
fn encode_thumbnail(
    (mut picture, orientation): (image::DynamicImage, image::metadata::Orientation),
) -> Result<Vec<u8>, String> {
    let failed = |e: image::ImageError| format!("no thumbnail: {e}");
    if picture.width() > THUMBNAIL_EDGE || picture.height() > THUMBNAIL_EDGE {
        picture = picture.thumbnail(THUMBNAIL_EDGE, THUMBNAIL_EDGE);
    }
    picture.apply_orientation(orientation);
    let small = picture.into_rgba8();
    let mut flat = image::RgbImage::new(small.width(), small.height());
    for (to, from) in flat.pixels_mut().zip(small.pixels()) {
        let [r, g, b, a] = from.0;
        let over_white = |c: u8| ((c as u32 * a as u32 + 255 * (255 - a as u32)) / 255) as u8;
        *to = image::Rgb([over_white(r), over_white(g), over_white(b)]);
    }
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80).encode_image(&flat).map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use img_parts::{ImageEXIF, jpeg::Jpeg, png::Png};

    /// A little-endian EXIF block: a camera model, an orientation, a capture time and a GPS
    /// latitude (in its own directory).
    fn camera_exif() -> Vec<u8> {
        use exif::{Field, In, Tag, Value};
        let fields = [
            Field { tag: Tag::Model, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"Loopwork Phone 9".to_vec()]) },
            Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![6]) },
            Field {
                tag: Tag::DateTimeOriginal,
                ifd_num: In::PRIMARY,
                value: Value::Ascii(vec![b"2026:12:07 09:30:00".to_vec()]),
            },
            Field {
                tag: Tag::GPSLatitude,
                ifd_num: In::PRIMARY,
                value: Value::Rational(vec![(31, 1).into(), (14, 1).into(), (0, 1).into()]),
            },
        ];
        let mut writer = exif::experimental::Writer::new();
        for f in &fields {
            writer.push_field(f);
        }
        let mut out = Cursor::new(Vec::new());
        writer.write(&mut out, true).expect("exif");
        out.into_inner()
    }

    /// A 64×32 JPEG with the camera's EXIF, an XMP packet and a comment; after its end, what
    /// phones append: a second picture with its own EXIF (MPF) and a motion photo's video.
    fn camera_jpeg() -> Bytes {
        let mut bytes = camera_jpeg_alone().to_vec();
        bytes.extend_from_slice(&camera_jpeg_alone());
        bytes.extend_from_slice(b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom\xA9xyz+31.2345+121.4737/");
        Bytes::from(bytes)
    }

    fn camera_jpeg_alone() -> Bytes {
        let picture = image::RgbImage::from_fn(64, 32, |x, _| image::Rgb([(x * 4) as u8, 90, 160]));
        let mut plain = Vec::new();
        image::codecs::jpeg::JpegEncoder::new(&mut plain).encode_image(&picture).expect("jpeg");
        let mut jpeg = Jpeg::from_bytes(Bytes::from(plain)).expect("parse");
        jpeg.set_exif(Some(Bytes::from(camera_exif())));
        let xmp = [&b"http://ns.adobe.com/xap/1.0/\0"[..], b"<x:xmpmeta>exif:GPSLatitude 31,14N</x:xmpmeta>"].concat();
        jpeg.segments_mut().insert(1, img_parts::jpeg::JpegSegment::new_with_contents(0xE1, Bytes::from(xmp)));
        jpeg.segments_mut()
            .insert(1, img_parts::jpeg::JpegSegment::new_with_contents(0xFE, Bytes::from("张三 13800001502")));
        jpeg.encoder().bytes()
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn a_jpeg_keeps_its_capture_time_and_orientation_and_loses_the_rest() {
        let original = camera_jpeg();
        assert!(contains(&original, b"Loopwork Phone 9") && contains(&original, b"GPSLatitude"));
        let stripped = strip(original.clone(), "image/jpeg").expect("strip");
        let gone: [&[u8]; 6] =
            [b"Loopwork Phone 9", b"GPSLatitude", b"xmpmeta", "13800001502".as_bytes(), b"ftypmp42", b"+31.2345"];
        for gone in gone {
            assert!(!contains(&stripped, gone), "{} left", String::from_utf8_lossy(gone));
        }
        let exif = exif::Reader::new().read_from_container(&mut Cursor::new(stripped.to_vec())).expect("exif kept");
        let tags: Vec<exif::Tag> = exif.fields().map(|f| f.tag).collect();
        assert_eq!(tags.len(), 2, "{tags:?}");
        let taken = exif.get_field(exif::Tag::DateTimeOriginal, exif::In::PRIMARY).expect("capture time");
        assert_eq!(taken.display_value().to_string(), "2026-12-07 09:30:00");
        let turned = exif.get_field(exif::Tag::Orientation, exif::In::PRIMARY).expect("orientation");
        assert_eq!(turned.value.get_uint(0), Some(6));
        // One picture, ending at its end-of-image marker; its pixels the same bytes (the
        // entropy-coded data is not re-encoded).
        let alone = camera_jpeg_alone();
        let scan_start = |b: &[u8]| b.windows(2).position(|w| w == [0xFF, 0xDA]).expect("a scan");
        let (from, to) = (scan_start(&alone), scan_start(&stripped));
        assert_eq!(&stripped[to..], &alone[from..]);
        assert_eq!(stripped.windows(2).filter(|w| *w == [0xFF, 0xD8]).count(), 1, "one start of image");
        let decoded = image::load_from_memory(&stripped).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (64, 32));
    }

    #[test]
    fn a_thumbnail_is_turned_the_way_the_photo_says() {
        // Orientation 6: the camera was held on its side; the 64×32 picture shows 32×64.
        let small = thumbnail(&strip(camera_jpeg(), "image/jpeg").expect("strip"), "image/jpeg").expect("thumb");
        let read = image::load_from_memory(&small).expect("jpeg");
        assert_eq!((read.width(), read.height()), (32, 64));
        let big = image::RgbImage::from_pixel(1280, 960, image::Rgb([200, 30, 30]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(big).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
        let read = image::load_from_memory(&thumbnail(&png, "image/png").expect("thumb")).expect("jpeg");
        assert_eq!((read.width(), read.height()), (THUMBNAIL_EDGE, 240));
    }

    #[test]
    fn a_signature_s_transparency_is_white() {
        let mut strokes = image::RgbaImage::from_pixel(100, 40, image::Rgba([0, 0, 0, 0]));
        strokes.put_pixel(50, 20, image::Rgba([0, 0, 0, 255]));
        let mut png = Vec::new();
        image::DynamicImage::ImageRgba8(strokes)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let read = image::load_from_memory(&thumbnail(&png, "image/png").expect("thumb")).expect("jpeg").into_rgb8();
        assert!(read.get_pixel(5, 5).0.iter().all(|&c| c > 240), "background {:?}", read.get_pixel(5, 5));
    }

    #[test]
    fn a_png_s_text_goes() {
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let mut parsed = Png::from_bytes(Bytes::from(png)).expect("parse");
        let text = img_parts::png::PngChunk::new(*b"tEXt", Bytes::from_static(b"Author\0Zhang San"));
        parsed.chunks_mut().insert(1, text);
        parsed.set_exif(Some(Bytes::from(camera_exif())));
        let stripped = strip(parsed.encoder().bytes(), "image/png").expect("strip");
        assert!(!contains(&stripped, b"Zhang San") && !contains(&stripped, b"Loopwork Phone 9"));
        assert!(image::load_from_memory(&stripped).is_ok());
    }

    #[test]
    fn scans_keep_their_data_and_tables_and_lose_what_sits_between_or_after() {
        let mut tail = vec![0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56];
        // A table between progressive scans stays; a comment and an APP1 between them go.
        tail.extend_from_slice(&[0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB]);
        tail.extend_from_slice(&[0xFF, 0xFE, 0x00, 0x06, b'G', b'P', b'S', b'!']);
        tail.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x04, 0xCC, 0xDD]);
        tail.extend_from_slice(&[0x78, 0xFF, 0xFF, 0xD9, b'M', b'P', b'4']);
        let clean_scans = |bytes: &[u8]| {
            let mut out = Vec::new();
            strip::scans(&mut &bytes[..], &mut out).map(|()| out)
        };
        let clean = clean_scans(&tail).expect("clean");
        assert_eq!(
            clean,
            vec![0x12, 0xFF, 0x00, 0x34, 0xFF, 0xD3, 0x56, 0xFF, 0xC4, 0x00, 0x04, 0xAA, 0xBB, 0x78, 0xFF, 0xD9]
        );
        // No end marker: one is added. A segment running past the end: an error.
        assert_eq!(clean_scans(&[0x01, 0x02]).expect("clean"), vec![0x01, 0x02, 0xFF, 0xD9]);
        assert!(clean_scans(&[0x01, 0xFF, 0xC4, 0x00, 0x40, 0x00]).is_err());
    }

    #[test]
    fn a_large_jpeg_is_decoded_at_an_eighth_and_a_huge_one_not_at_all() {
        // A small JPEG whose frame header says 8,000 × 8,000 pixels (192 MB decoded whole, past
        // the general path's limit): decoded at an eighth (1,000 × 1,000), its thumbnail made.
        let mut jpeg = camera_jpeg_alone().to_vec();
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a frame header");
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x1F, 0x40, 0x1F, 0x40]);
        let small = image::load_from_memory(&thumbnail(&jpeg, "image/jpeg").expect("scaled")).expect("a JPEG");
        assert_eq!((small.width(), small.height()), (THUMBNAIL_EDGE, THUMBNAIL_EDGE));
        // 12,000 × 12,000 (144 megapixels), and 30,000 × 30,000: none.
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x2E, 0xE0, 0x2E, 0xE0]);
        let refused = thumbnail(&jpeg, "image/jpeg").expect_err("too many pixels");
        assert!(refused.contains("100 megapixels"), "{refused}");
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x75, 0x30, 0x75, 0x30]);
        let refused = thumbnail(&jpeg, "image/jpeg").expect_err("too large");
        assert!(refused.contains("30000×30000"), "{refused}");
    }

    #[test]
    fn a_progressive_jpeg_is_decoded_whole_under_the_memory_limit() {
        // A progressive JPEG whose header says 8,000 × 8,000 (a baseline one gets a thumbnail
        // from an eighth): the scaled decoder would keep every coefficient at full size, so the
        // general path takes it, and its limit refuses it from the header (192 MB of pixels).
        let mut jpeg = Vec::new();
        let mut encoder = jpeg_encoder::Encoder::new(&mut jpeg, 90);
        encoder.set_progressive(true);
        encoder.encode(&[128; 64 * 64 * 3], 64, 64, jpeg_encoder::ColorType::Rgb).expect("progressive");
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC2]).expect("a progressive frame header");
        let small = image::load_from_memory(&thumbnail(&jpeg, "image/jpeg").expect("small")).expect("a JPEG");
        assert_eq!((small.width(), small.height()), (64, 64));
        jpeg[sof + 5..sof + 9].copy_from_slice(&[0x1F, 0x40, 0x1F, 0x40]);
        let refused = thumbnail(&jpeg, "image/jpeg").expect_err("past the limit");
        assert!(refused.contains("limit"), "{refused}");
    }

    /// An extended WebP (lossless, 16×8) with the camera's EXIF, an XMP packet, and bytes after
    /// its RIFF size.
    fn camera_webp() -> Bytes {
        let picture = image::RgbaImage::from_pixel(16, 8, image::Rgba([10, 200, 30, 128]));
        let mut plain = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut plain)
            .encode(&picture, 16, 8, image::ExtendedColorType::Rgba8)
            .expect("webp");
        let mut webp = img_parts::webp::WebP::from_bytes(Bytes::from(plain)).expect("parse");
        webp.set_exif(Some(Bytes::from(camera_exif())));
        let xmp = Bytes::from_static(b"<x:xmpmeta>exif:GPSLatitude 31,14N</x:xmpmeta>");
        webp.chunks_mut().push(img_parts::riff::RiffChunk::new(*b"XMP ", img_parts::riff::RiffContent::Data(xmp)));
        let mut bytes = webp.encoder().bytes().to_vec();
        bytes[20] |= 0x04;
        bytes.extend_from_slice(b"+31.2345+121.4737/");
        Bytes::from(bytes)
    }

    #[test]
    fn a_webp_keeps_its_capture_time_and_loses_the_rest() {
        let original = camera_webp();
        assert!(contains(&original, b"Loopwork Phone 9") && contains(&original, b"xmpmeta"));
        assert_eq!(&original[12..16], b"VP8X", "an extended WebP");
        let stripped = strip(original, "image/webp").expect("strip");
        for gone in [&b"Loopwork Phone 9"[..], b"xmpmeta", b"+31.2345"] {
            assert!(!contains(&stripped, gone), "{} left", String::from_utf8_lossy(gone));
        }
        assert_eq!(u32::from_le_bytes(stripped[4..8].try_into().expect("4")) as usize, stripped.len() - 8);
        assert_eq!(stripped[20] & 0x0C, 0x08, "EXIF flagged, XMP not");
        let parsed = img_parts::webp::WebP::from_bytes(stripped.clone()).expect("parse");
        let exif = exif::Reader::new().read_raw(parsed.exif().expect("exif kept").to_vec()).expect("exif");
        let tags: Vec<exif::Tag> = exif.fields().map(|f| f.tag).collect();
        assert_eq!(tags, [exif::Tag::Orientation, exif::Tag::DateTimeOriginal]);
        let decoded = image::load_from_memory(&stripped).expect("decodes");
        assert_eq!((decoded.width(), decoded.height()), (16, 8));
        assert!(thumbnail(&stripped, "image/webp").is_ok());
    }

    #[test]
    fn a_stream_read_a_byte_at_a_time_strips_to_the_same_bytes() {
        for (picture, mime) in [(camera_jpeg(), "image/jpeg"), (camera_webp(), "image/webp")] {
            let whole = strip(picture.clone(), mime).expect("strip");
            let mut out = Cursor::new(Vec::new());
            let written =
                strip_stream(mime, std::io::BufReader::with_capacity(1, &picture[..]), &mut out).expect("stream");
            assert_eq!(out.into_inner(), whole.to_vec(), "{mime}");
            assert_eq!(written, whole.len() as u64);
            assert_eq!(strip(whole.clone(), mime).expect("again"), whole, "stripping twice changes nothing");
        }
    }

    /// A little-endian EXIF block whose directory holds `entries` copies of one entry: tag
    /// `tag` of type BYTE, `count` bytes, all at the same offset.
    fn shared_value_exif(tag: u16, entries: u16, count: u32) -> Vec<u8> {
        let mut tiff = b"II*\0\x08\0\0\0".to_vec();
        tiff.extend_from_slice(&entries.to_le_bytes());
        let value_at = 8 + 2 + 12 * u32::from(entries) + 4;
        for _ in 0..entries {
            tiff.extend_from_slice(&tag.to_le_bytes());
            tiff.extend_from_slice(&1u16.to_le_bytes());
            tiff.extend_from_slice(&count.to_le_bytes());
            tiff.extend_from_slice(&value_at.to_le_bytes());
        }
        tiff.extend_from_slice(&[0; 4]);
        tiff.resize(value_at as usize + count as usize, 0);
        tiff
    }

    #[test]
    fn exif_whose_entries_share_one_large_value_is_read_in_little_memory() {
        // 40,000 entries sharing 500 KB: a reader that decodes every entry would build 20 GB.
        // Only the kept tags are looked up: none here, so no EXIF at all.
        let bomb = shared_value_exif(0x010E, 40_000, 500_000);
        assert!(bomb.len() < MAX_EXIF_BYTES as usize);
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let mut parsed = Png::from_bytes(Bytes::from(png)).expect("parse");
        parsed.set_exif(Some(Bytes::from(bomb)));
        let started = std::time::Instant::now();
        let stripped = strip(parsed.encoder().bytes(), "image/png").expect("strip");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(stripped.len() < 1_000 && !contains(&stripped, b"eXIf"), "{} bytes", stripped.len());
        // An orientation of the wrong type and size, twice: dropped, not written large.
        let wrong = shared_value_exif(0x0112, 2, 600_000);
        assert_eq!(kept_exif(&wrong), None);
    }

    #[test]
    fn a_repeated_start_or_a_reserved_marker_does_not_carry_exif_through() {
        let alone = camera_jpeg_alone();
        // A second start of image before the EXIF: read as a marker without a length.
        let mut twice = vec![0xFF, 0xD8];
        twice.extend_from_slice(&alone);
        // A reserved marker (0x02) holding the camera's EXIF, before the frame.
        let exif = camera_exif();
        let mut reserved = alone[..2].to_vec();
        reserved.extend_from_slice(&[0xFF, 0x02]);
        reserved.extend_from_slice(&(exif.len() as u16 + 2).to_be_bytes());
        reserved.extend_from_slice(&exif);
        // Stray bytes between segments, as some editors leave them: skipped.
        reserved.extend_from_slice(&[0x00, 0x00]);
        reserved.extend_from_slice(&alone[2..]);
        for jpeg in [twice, reserved] {
            let stripped = strip(Bytes::from(jpeg), "image/jpeg").expect("strip");
            assert!(!contains(&stripped, b"Loopwork Phone 9"));
            assert!(image::load_from_memory(&stripped).is_ok());
        }
        // Where the first picture forgot its end, the second's start ends it.
        let mut forgot = alone[..alone.len() - 2].to_vec();
        forgot.extend_from_slice(&alone);
        let stripped = strip(Bytes::from(forgot), "image/jpeg").expect("strip");
        assert_eq!(stripped.windows(2).filter(|w| *w == [0xFF, 0xD8]).count(), 1);
    }

    #[test]
    fn a_png_without_its_end_gets_one() {
        let mut png = Vec::new();
        image::DynamicImage::ImageRgb8(image::RgbImage::new(8, 8))
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("png");
        let end = png.len() - 12;
        let stripped = strip(Bytes::from(png[..end].to_vec()), "image/png").expect("strip");
        assert_eq!(&stripped[..], &png[..]);
    }

    #[test]
    fn unreadable_bytes_are_an_error_not_a_panic() {
        assert!(strip(Bytes::from_static(b"\xFF\xD8\xFF\xE1\x00"), "image/jpeg").is_err());
        assert!(thumbnail(b"\xFF\xD8\xFF\xE1\x00", "image/jpeg").is_err());
        let pdf = Bytes::from_static(b"%PDF-1.7 ...");
        assert_eq!(strip(pdf.clone(), "application/pdf").expect("as is"), pdf);
    }
}
