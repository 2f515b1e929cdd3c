package view

import "strings"

// glyphs is a 3x5 bitmap font: five rows of three cells, '#' lit. Lower-case
// letters are drawn as upper case; unknown runes as a blank.
var glyphs = map[rune]string{
	'A': ".#.#.#####.##.#", 'B': "##.#.###.#.###.", 'C': ".###..#..#...##",
	'D': "##.#.##.##.###.", 'E': "####..##.#..###", 'F': "####..##.#..#..",
	'G': ".###..#.##.#.##", 'H': "#.##.#####.##.#", 'I': "###.#..#..#.###",
	'J': "..#..#..##.#.#.", 'K': "#.##.###.#.##.#", 'L': "#..#..#..#..###",
	'M': "#.########.##.#", 'N': "##.#.##.##.##.#", 'O': ".#.#.##.##.#.#.",
	'P': "##.#.###.#..#..", 'Q': ".#.#.##.###..##", 'R': "##.#.###.#.##.#",
	'S': ".###...#...###.", 'T': "###.#..#..#..#.", 'U': "#.##.##.##.####",
	'V': "#.##.##.##.#.#.", 'W': "#.##.########.#", 'X': "#.##.#.#.#.##.#",
	'Y': "#.##.#.#..#..#.", 'Z': "###..#.#.#..###",
	'0': "####.##.##.####", '1': ".#.##..#..#.###", '2': "##...#.#.#..###",
	'3': "##...#.#...###.", '4': "#.##.####..#..#", '5': "####..##...###.",
	'6': ".###..####.####", '7': "###..#.#..#..#.", '8': "####.#####.####",
	'9': "####.####..###.",
	'.': ".............#.", ':': "....#.....#....", '/': "..#..#.#.#..#..",
	'=': "...###...###...", '-': "......###......", '(': ".#.#..#..#...#.",
	')': ".#...#..#..#.#.", ',': "..........#.#..", '+': "....#.###.#....",
	'<': "..#.#.#...#...#", '>': "#...#...#.#.#..", '%': "#.#..#.#.#..#.#",
	'_': "............###", '?': "##...#.#.....#.",
}

// Text sizes at the scale the legend uses: each cell is textScale pixels.
const (
	textScale    = 2
	glyphW       = 3 * textScale
	glyphH       = 5 * textScale
	glyphAdvance = 4 * textScale
	lineHeight   = 7 * textScale
)

// drawText writes s into the RGBA8 overlay (R in the low byte) with its top
// left corner at (x, y), clipped to the w x h picture.
func drawText(dst []uint32, w, h, x, y int, s string, rgb [3]uint8) {
	c := uint32(rgb[0]) | uint32(rgb[1])<<8 | uint32(rgb[2])<<16 | 255<<24
	for i, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if !ok || len(g) != 15 {
			continue
		}
		for cell := 0; cell < 15; cell++ {
			if g[cell] != '#' {
				continue
			}
			cx, cy := x+i*glyphAdvance+(cell%3)*textScale, y+(cell/3)*textScale
			fillRect(dst, w, h, cx, cy, textScale, textScale, c)
		}
	}
}

// fillRect fills a clipped rectangle of the overlay with the packed colour c.
func fillRect(dst []uint32, w, h, x, y, rw, rh int, c uint32) {
	for yy := max(y, 0); yy < min(y+rh, h); yy++ {
		for xx := max(x, 0); xx < min(x+rw, w); xx++ {
			dst[yy*w+xx] = c
		}
	}
}
