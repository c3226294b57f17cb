/**
 * Writes the app's PNG icons (static/icons/) from the logo's geometry (static/favicon.svg,
 * src/lib/components/Logo.svelte): a rounded square with two arches, the tunnel. No image
 * library: shapes are rasterised with 4×4 supersampling and encoded with node:zlib.
 *
 *   npx tsx scripts/generate-icons.ts
 *
 * "any" icons keep the rounded corners (transparent outside); maskable ones are full-bleed with
 * the arches inside the central 80 % safe zone, where launchers may crop to any shape.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { deflateSync } from 'node:zlib';

const OUT_DIR = fileURLToPath(new URL('../static/icons/', import.meta.url));
/** The logo is drawn on a 32-unit grid (favicon.svg's viewBox). */
const GRID = 32;
const CORNER_RADIUS = 9;
const STROKE_HALF_WIDTH = 1.5;
const SUPERSAMPLES = 4;
const BRAND: Rgb = [0x44, 0x56, 0xd3];
const WHITE: Rgb = [0xff, 0xff, 0xff];
/** The inner arch is drawn at this opacity. */
const INNER_ARCH_OPACITY = 0.55;
/** Maskable icons: the arches are scaled to fit the safe zone (a circle of 40 % radius). */
const MASKABLE_GLYPH_SCALE = 0.8;

type Rgb = [number, number, number];

interface Arch {
	/** x of the left and right legs, y where the legs end (bottom) and where the arc starts. */
	left: number;
	right: number;
	bottom: number;
	springLine: number;
}

const OUTER_ARCH: Arch = { left: 8, right: 24, bottom: 24, springLine: 15 };
const INNER_ARCH: Arch = { left: 13, right: 19, bottom: 24, springLine: 15.5 };

function distanceToSegment(px: number, py: number, x: number, y1: number, y2: number): number {
	const y = Math.min(Math.max(py, Math.min(y1, y2)), Math.max(y1, y2));
	return Math.hypot(px - x, py - y);
}

/** Distance from a point to the arch's centre line: two vertical legs joined by a half circle. */
function distanceToArch(px: number, py: number, arch: Arch): number {
	const legs = Math.min(
		distanceToSegment(px, py, arch.left, arch.bottom, arch.springLine),
		distanceToSegment(px, py, arch.right, arch.bottom, arch.springLine)
	);
	if (py > arch.springLine) return legs;
	const cx = (arch.left + arch.right) / 2;
	const radius = (arch.right - arch.left) / 2;
	return Math.min(legs, Math.abs(Math.hypot(px - cx, py - arch.springLine) - radius));
}

function insideRoundedSquare(x: number, y: number): boolean {
	if (x < 0 || y < 0 || x > GRID || y > GRID) return false;
	const cx = Math.min(Math.max(x, CORNER_RADIUS), GRID - CORNER_RADIUS);
	const cy = Math.min(Math.max(y, CORNER_RADIUS), GRID - CORNER_RADIUS);
	return Math.hypot(x - cx, y - cy) <= CORNER_RADIUS;
}

/** Colour and opacity of one sample point in grid units. */
function sample(x: number, y: number, maskable: boolean): [number, number, number, number] {
	if (!maskable && !insideRoundedSquare(x, y)) return [0, 0, 0, 0];
	// Maskable: the background is full-bleed and the arches shrink around the centre.
	const gx = maskable ? GRID / 2 + (x - GRID / 2) / MASKABLE_GLYPH_SCALE : x;
	const gy = maskable ? GRID / 2 + (y - GRID / 2) / MASKABLE_GLYPH_SCALE : y;
	let color: Rgb = BRAND;
	if (distanceToArch(gx, gy, OUTER_ARCH) <= STROKE_HALF_WIDTH) color = WHITE;
	else if (distanceToArch(gx, gy, INNER_ARCH) <= STROKE_HALF_WIDTH) {
		color = BRAND.map((c, i) => c + (WHITE[i] - c) * INNER_ARCH_OPACITY) as Rgb;
	}
	return [color[0], color[1], color[2], 1];
}

function renderRgba(size: number, maskable: boolean): Buffer {
	const pixels = Buffer.alloc(size * size * 4);
	const samples = SUPERSAMPLES * SUPERSAMPLES;
	for (let py = 0; py < size; py += 1) {
		for (let px = 0; px < size; px += 1) {
			let r = 0;
			let g = 0;
			let b = 0;
			let a = 0;
			for (let sy = 0; sy < SUPERSAMPLES; sy += 1) {
				for (let sx = 0; sx < SUPERSAMPLES; sx += 1) {
					const x = ((px + (sx + 0.5) / SUPERSAMPLES) / size) * GRID;
					const y = ((py + (sy + 0.5) / SUPERSAMPLES) / size) * GRID;
					const [sr, sg, sb, sa] = sample(x, y, maskable);
					r += sr * sa;
					g += sg * sa;
					b += sb * sa;
					a += sa;
				}
			}
			const at = (py * size + px) * 4;
			pixels[at] = a > 0 ? Math.round(r / a) : 0;
			pixels[at + 1] = a > 0 ? Math.round(g / a) : 0;
			pixels[at + 2] = a > 0 ? Math.round(b / a) : 0;
			pixels[at + 3] = Math.round((a / samples) * 255);
		}
	}
	return pixels;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
	let c = n;
	for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	return c >>> 0;
});

function crc32(bytes: Buffer): number {
	let c = 0xffffffff;
	for (const byte of bytes) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
	const length = Buffer.alloc(4);
	length.writeUInt32BE(data.length);
	const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
	const crc = Buffer.alloc(4);
	crc.writeUInt32BE(crc32(body));
	return Buffer.concat([length, body, crc]);
}

/** A PNG (RFC 2083): 8-bit RGBA, no interlace, filter type 0 on every row. */
function encodePng(size: number, rgba: Buffer): Buffer {
	const header = Buffer.alloc(13);
	header.writeUInt32BE(size, 0);
	header.writeUInt32BE(size, 4);
	header[8] = 8; // bit depth
	header[9] = 6; // colour type: RGBA
	const rows = Buffer.alloc(size * (size * 4 + 1));
	for (let y = 0; y < size; y += 1) rgba.copy(rows, y * (size * 4 + 1) + 1, y * size * 4, (y + 1) * size * 4);
	return Buffer.concat([
		Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
		chunk('IHDR', header),
		chunk('IDAT', deflateSync(rows, { level: 9 })),
		chunk('IEND', Buffer.alloc(0))
	]);
}

const ICONS: { file: string; size: number; maskable: boolean }[] = [
	{ file: 'icon-192.png', size: 192, maskable: false },
	{ file: 'icon-512.png', size: 512, maskable: false },
	{ file: 'icon-maskable-512.png', size: 512, maskable: true },
	// iOS rounds the corners itself and shows transparency as black.
	{ file: 'apple-touch-icon.png', size: 180, maskable: true }
];

mkdirSync(OUT_DIR, { recursive: true });
for (const icon of ICONS) {
	const png = encodePng(icon.size, renderRgba(icon.size, icon.maskable));
	writeFileSync(path.join(OUT_DIR, icon.file), png);
	console.log(`${icon.file}: ${icon.size}×${icon.size}, ${png.length} bytes`);
}
