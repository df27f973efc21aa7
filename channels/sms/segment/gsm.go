package segment

// septets returns how many septets r takes in the GSM 7-bit default alphabet
// of 3GPP TS 23.038: 1 for a character of the basic table, 2 for one of the
// extension table (the escape septet, then the character), and 0 when r has
// no GSM-7 code at all, so that a message holding it must go as UCS-2.
//
// Only the default tables count: national language shift tables are not
// used by Twilio for ordinary long-code traffic and are left out.
func septets(r rune) int {
	if r < 0x80 {
		return asciiSeptets(r)
	}
	switch r {
	// The basic table's characters outside ASCII, in code order
	// (0x01-0x0F, 0x10-0x1F without the escape 0x1B, then 0x24, 0x40,
	// 0x5B-0x60 and 0x7B-0x7F).
	case '£', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', 'Ø', 'ø', 'Å', 'å',
		'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', 'Æ', 'æ', 'ß', 'É',
		'¤', '¡', 'Ä', 'Ö', 'Ñ', 'Ü', '§', '¿', 'ä', 'ö', 'ñ', 'ü', 'à':
		return 1
	case '€': // the only extension character outside ASCII
		return 2
	}
	return 0
}

// asciiSeptets is septets for r below 0x80. ASCII and GSM-7 agree on
// letters, digits, space and most punctuation; they differ on the controls
// (only LF and CR are in the basic table, form feed is an extension
// character), on the eight symbols GSM moved to the extension table, and on
// the grave accent and DEL, which GSM-7 lacks.
func asciiSeptets(r rune) int {
	switch {
	case r == '\n' || r == '\r':
		return 1
	case r == '\f':
		return 2
	case r < 0x20 || r == '`' || r == 0x7F:
		return 0
	}
	switch r {
	case '[', '\\', ']', '^', '{', '|', '}', '~':
		return 2
	}
	return 1
}
