//! Photos and signatures as the server keeps and serves them (docs/attachments.md): their
//! metadata stripped but for when the picture was taken and which way up it is, and a small
//! JPEG thumbnail for the desk's and the phones' lists. Pure functions over the bytes; the
//! blob store calls them once, when an upload completes (`server/src/blobs.rs`); the fuzz target
//! `picture` feeds them any bytes.
//!
//! What goes: EXIF but for `DateTimeOriginal`, `OffsetTimeOriginal` and `Orientation` (so GPS
//! position, camera make and model, serial numbers, software, owner names), XMP, IPTC and
//! every other application segment or text chunk. What stays: the pixels, untouched (the bytes
//! are not re-encoded), the JFIF header, the ICC colour profile and Adobe's colour transform.

use std::io::Cursor;

use bytes::Bytes;
use img_parts::jpeg::{Jpeg, JpegSegment};
use img_parts::{ImageEXIF, png::Png, webp::WebP};

/// The longest edge of a thumbnail, in pixels.
pub const THUMBNAIL_EDGE: u32 = 320;
/// The most memory one picture's decoded pixels may take for its thumbnail (a 48-megapixel
/// photo in 8-bit RGB takes 144 MiB).
const DECODE_MAX_BYTES: u64 = 160 << 20;
/// The widest or tallest picture a thumbnail is made of.
const DECODE_MAX_EDGE: u32 = 20_000;

/// The EXIF tags kept: when the picture was taken, and which way up it is.
const KEPT_TAGS: &[exif::Tag] = &[exif::Tag::DateTimeOriginal, exif::Tag::OffsetTimeOriginal, exif::Tag::Orientation];

/// The bytes of a picture of type `mime` (sniffed) without the metadata that can identify or
/// locate anyone; the bytes as they came for other types.
pub fn strip(bytes: Bytes, mime: &str) -> Result<Bytes, String> {
    let bad = |e: img_parts::Error| format!("unreadable {mime}: {e}");
    Ok(match mime {
        "image/jpeg" => {
            let mut jpeg = Jpeg::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(jpeg.exif());
            let mut segments = Vec::with_capacity(jpeg.segments().len());
            for segment in jpeg.segments() {
                if let Some(kept) = kept_segment(segment)? {
                    segments.push(kept);
                }
            }
            *jpeg.segments_mut() = segments;
            jpeg.set_exif(kept);
            jpeg.encoder().bytes()
        }
        "image/png" => {
            let mut png = Png::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(png.exif());
            png.chunks_mut().retain(|chunk| !matches!(&chunk.kind(), b"eXIf" | b"tEXt" | b"zTXt" | b"iTXt" | b"tIME"));
            png.set_exif(kept);
            png.encoder().bytes()
        }
        "image/webp" => {
            let mut webp = WebP::from_bytes(bytes).map_err(bad)?;
            let kept = kept_exif(webp.exif());
            webp.remove_chunks_by_id(*b"XMP ");
            // Also sets the flags of the extended header to what remains.
            webp.set_exif(kept);
            webp.encoder().bytes()
        }
        _ => bytes,
    })
}

/// What stays of a JPEG segment before the first scan: every segment of the picture itself,
/// the JFIF header (APP0 `JFIF`, without its thumbnail), the ICC profile (APP2 `ICC_PROFILE`)
/// and Adobe's colour transform (APP14 `Adobe`); not EXIF or XMP (APP1, put back by
/// [`kept_exif`]), other application segments (MPF, JFXX thumbnails, IPTC, makers' own), or
/// comments. The first scan's segment also holds the rest of the file: see [`clean_scans`].
fn kept_segment(segment: &JpegSegment) -> Result<Option<JpegSegment>, String> {
    let contents = segment.contents();
    Ok(match segment.marker() {
        APP0 if contents.starts_with(b"JFIF\0") && contents.len() >= 12 => {
            // The header with no thumbnail: version, units, densities, then 0×0.
            let header = [&contents[..12], &[0, 0][..]].concat();
            Some(JpegSegment::new_with_contents(APP0, Bytes::from(header)))
        }
        APP2 if contents.starts_with(b"ICC_PROFILE\0") => Some(segment.clone()),
        APP14 if contents.starts_with(b"Adobe") => Some(segment.clone()),
        APP0..=APP15 | COM => None,
        marker if segment.has_entropy() => {
            // The segment as written: marker, length, header, then the rest of the file.
            let whole = segment.clone().encoder().bytes();
            let scans = clean_scans(&whole[segment.len()..])?;
            Some(JpegSegment::new_with_entropy(marker, contents.clone(), Bytes::from(scans)))
        }
        _ => Some(segment.clone()),
    })
}

const APP0: u8 = 0xE0;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const APP15: u8 = 0xEF;
const COM: u8 = 0xFE;
const EOI: u8 = 0xD9;

/// The bytes after the first scan's header, cleaned: the entropy-coded data as it is, the
/// segments of later scans (tables, scan headers) kept, application segments and comments
/// between scans dropped, and everything after the end-of-image marker dropped (a phone's
/// second picture with its own EXIF, a motion photo's video, makers' trailers). A file that
/// ends without the marker gets one.
fn clean_scans(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let truncated = || "a JPEG segment runs past the end of the file".to_owned();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        // Entropy-coded data up to the next 0xFF.
        let Some(at) = bytes[i..].iter().position(|&b| b == 0xFF) else {
            out.extend_from_slice(&bytes[i..]);
            break;
        };
        out.extend_from_slice(&bytes[i..i + at]);
        i += at;
        let Some(&marker) = bytes.get(i + 1) else {
            break;
        };
        match marker {
            // A stuffed 0xFF, a restart marker, a marker without a length: data.
            0x00 | 0xD0..=0xD7 | 0x01 => {
                out.extend_from_slice(&bytes[i..i + 2]);
                i += 2;
            }
            // Fill before a marker.
            0xFF => i += 1,
            EOI => break,
            _ => {
                let length = bytes.get(i + 2..i + 4).ok_or_else(truncated)?;
                let end = i + 2 + usize::from(u16::from_be_bytes([length[0], length[1]]));
                if end > bytes.len() || end < i + 4 {
                    return Err(truncated());
                }
                if !matches!(marker, APP0..=APP15 | COM) {
                    out.extend_from_slice(&bytes[i..end]);
                }
                i = end;
            }
        }
    }
    out.extend_from_slice(&[0xFF, EOI]);
    Ok(out)
}

/// An EXIF block holding only the tags kept, or none when the picture had none of them.
fn kept_exif(exif: Option<Bytes>) -> Option<Bytes> {
    let read = exif::Reader::new().read_raw(exif?.to_vec()).ok()?;
    let fields: Vec<&exif::Field> =
        read.fields().filter(|f| f.ifd_num == exif::In::PRIMARY && KEPT_TAGS.contains(&f.tag)).collect();
    if fields.is_empty() {
        return None;
    }
    let mut writer = exif::experimental::Writer::new();
    for field in fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, read.little_endian()).ok()?;
    Some(Bytes::from(out.into_inner()))
}

/// A JPEG thumbnail of a picture of type `mime`, at most [`THUMBNAIL_EDGE`] pixels on its
/// longer edge, turned the way its EXIF orientation says, transparency on white (a signature
/// is dark strokes on nothing).
pub fn thumbnail(bytes: &[u8], mime: &str) -> Result<Vec<u8>, String> {
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
        && let Some(scaled) = scaled_jpeg(bytes)?
    {
        return encode_thumbnail(scaled);
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(DECODE_MAX_BYTES);
    limits.max_image_width = Some(DECODE_MAX_EDGE);
    limits.max_image_height = Some(DECODE_MAX_EDGE);
    let mut decoder = ImageReader::with_format(Cursor::new(bytes), format).into_decoder().map_err(failed)?;
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
fn scaled_jpeg(bytes: &[u8]) -> Result<Option<(image::DynamicImage, image::metadata::Orientation)>, String> {
    use jpeg_decoder::{CodingProcess, PixelFormat};
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
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
    let picture = if grey {
        image::GrayImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageLuma8)
    } else {
        image::RgbImage::from_raw(width, height, pixels).map(image::DynamicImage::ImageRgb8)
    };
    Ok(picture.map(|p| (p, orientation(bytes))))
}

/// Which way up a JPEG is, by its EXIF (upright when it says nothing readable).
fn orientation(bytes: &[u8]) -> image::metadata::Orientation {
    exif::Reader::new()
        .read_from_container(&mut Cursor::new(bytes))
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

    #[test]
    fn unreadable_bytes_are_an_error_not_a_panic() {
        assert!(strip(Bytes::from_static(b"\xFF\xD8\xFF\xE1\x00"), "image/jpeg").is_err());
        assert!(thumbnail(b"\xFF\xD8\xFF\xE1\x00", "image/jpeg").is_err());
        let pdf = Bytes::from_static(b"%PDF-1.7 ...");
        assert_eq!(strip(pdf.clone(), "application/pdf").expect("as is"), pdf);
    }
}
