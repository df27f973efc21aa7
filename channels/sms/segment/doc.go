// Package segment counts, splits, bounds and normalises SMS text the way
// the network bills it: in segments.
//
// # Encodings and segments
//
// An SMS carries 140 octets of user data. A body whose characters all
// belong to the GSM 7-bit default alphabet (3GPP TS 23.038, formerly GSM
// 03.38) is packed seven bits a character, 160 characters an SMS. The
// default alphabet's basic table holds the ASCII letters, digits, space and
// most punctuation, LF and CR, and
//
//	@ £ $ ¥ è é ù ì ò Ç Ø ø Å å Δ _ Φ Γ Λ Ω Π Ψ Σ Θ Ξ Æ æ ß É ¤ ¡ Ä Ö Ñ Ü § ¿ ä ö ñ ü à
//
// (the grave accent ` is missing, and control characters other than LF
// and CR). Its extension table is reached through an escape code, so each of
// its characters costs two septets:
//
//	form feed  ^  {  }  \  [  ~  ]  |  €
//
// One character outside both tables (an accent GSM lacks such as ê or á, a
// curly quote, an emoji, any non-Latin script) sends the whole body as
// UCS-2 instead: sixteen bits a unit, 70 units an SMS, where a character
// outside the Basic Multilingual Plane (most emoji) is a surrogate pair of
// two units. Split measures a per-message length limit (Twilio's 1600
// characters) in UTF-16 units as well: never looser than counting runes.
//
// A longer body travels as a concatenated SMS: each part starts with a user
// data header of six octets that says which message and which part it is,
// leaving 153 septets or 67 units per part. A part never ends between an
// escape code and its character, nor between the halves of a surrogate
// pair: such a character moves whole to the next part, which can add a
// segment. Count applies exactly these rules; it counts an empty body as
// one segment, as Twilio's published segment calculator does.
//
// # Splitting
//
// Split cuts a reply longer than the per-message limit into bodies sent as
// separate messages. Because a separate SMS of up to 160 septets costs one
// segment while a concatenated one pays 7 septets of header per segment, the
// cheapest split of all would send every 160 characters on its own; Split
// does not, since separate messages are not reassembled and may arrive out
// of order. It first keeps the number of bodies minimal, then the number of
// segments, then the number of cuts inside words, and is exact for that
// order (it never settles for a local choice).
//
// The algorithm is a dynamic programme over cut positions, run from the end
// of the text. For a start p it needs the best cost of the rest from every
// later position, and two facts keep the choices few: a body that grows
// never costs fewer segments, and the rest of a text that starts later
// never costs more. So, for each segment count s, only the farthest end
// at which the body [p, j) still costs s segments and fits the limit is
// worth trying, together with the last white space at or before it and j
// itself when it falls inside a word. Those ends come from precomputed
// tables: how far a single SMS (160 septets, 70 units) or one part of a
// concatenated one (153 septets, 67 units) reaches from any position, so
// that s parts reach s table steps; how far the limit reaches; and where the
// next non-GSM character is, as the body is GSM-7 only before it. Each
// start tries about limit/66 + 2 values of s, each in constant time: O(n·k)
// for n characters, k being about 27 for Twilio's limit of 1600.
//
// # Bounding and normalising
//
// Truncate keeps a body within a number of segments, followed by a notice
// that it was cut. Normalize maps typographic quotes, dashes, ellipses and
// spaces to GSM-7 ones, so that text pasted from a word processor stays in
// the 160-character encoding.
//
// The package does no I/O and keeps no state; every function is safe for
// concurrent use.
package segment
