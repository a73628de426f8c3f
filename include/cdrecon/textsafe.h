/*
 * cdrecon — text from data made safe to show: escaping for terminals and
 * logs, display widths, and masking of phone numbers in free text.
 *
 * Data (record ids, call ids, peers, file names, tariff names) can hold any
 * byte. Shown raw on a terminal, ESC and BEL sequences clear the screen, set
 * the window title or write the clipboard (OSC 52). Everything cdrecon
 * prints for a person goes through cdr_text_escape; every text written for a
 * customer or a log masks other parties' numbers with cdr_text_mask_numbers.
 */
#ifndef CDRECON_TEXTSAFE_H
#define CDRECON_TEXTSAFE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Length (1..4) of the valid UTF-8 character at s (n bytes available), or
 * 0 when the bytes there are not valid UTF-8 (overlong forms, surrogates and
 * code points above U+10FFFF are invalid). *cp (may be NULL) gets the code
 * point. n must be >= 1. */
size_t cdr_utf8_len(const unsigned char *s, size_t n, uint32_t *cp);

/* 1 if code point cp must not reach a terminal raw: C0 controls (TAB and LF
 * included), DEL, C1 controls U+0080..U+009F, and the bidirectional
 * overrides and isolates U+202A..U+202E, U+2066..U+2069. */
int cdr_char_unsafe(uint32_t cp);

/*
 * Escape n bytes of s for a terminal or a log line: every unsafe character
 * (cdr_char_unsafe) and every byte that is not part of valid UTF-8 is
 * written as \xHH, one escape per byte; everything else is copied. The
 * result is valid UTF-8 with no control character. Writes at most cap - 1
 * bytes and a NUL (cap >= 1), never cutting an escape or a character, and
 * returns the length written. cap >= 4 * n + 1 always holds the whole text.
 */
size_t cdr_text_escape(const char *s, size_t n, char *buf, size_t cap);

/*
 * Raw bytes (a rejected row) as valid UTF-8 text, losslessly: a backslash
 * is written "\\", and every byte that is NUL, another control byte but
 * TAB, LF and CR, DEL, or not part of valid UTF-8 is written \xHH (two
 * upper-case hex digits); everything else is copied. Decoding: "\\" is a
 * backslash, "\xHH" the byte HH. buf must hold 4 * n + 1 bytes; returns
 * the length written (a NUL follows).
 */
size_t cdr_bytes_escape(const char *s, size_t n, char *buf);

/* Columns a code point takes on a terminal: 0 (combining marks, zero-width
 * characters), 2 (East Asian wide and full-width: CJK, Hangul, full-width
 * forms, most emoji) or 1. */
int cdr_char_width(uint32_t cp);

/* Display width of valid UTF-8 text without unsafe characters (what
 * cdr_text_escape returns); an invalid byte counts as 1. */
size_t cdr_text_width(const char *s, size_t n);

/*
 * Mask the phone numbers in free text, for customer copies and logs.
 * A number is a run of digits — ASCII 0-9 or full-width U+FF10..U+FF19 —
 * possibly broken by separators between digit groups (up to two of: space,
 * '-', '.', '(', ')', NO-BREAK SPACE, IDEOGRAPHIC SPACE, the dashes
 * U+2010..U+2015 and the full-width '-', '.', '(', ')'), so that
 * "139-8765-4321", "+86 139 1111 2222" and "(0755) 8888 9999" are one
 * number each. A date "YYYY-MM-DD" (also with '.' or '/') is never part of
 * a number. A number of 8 digits or more is masked like cdr_number_mask:
 * after a "86"/"0086" country prefix in front of an 11-digit mobile number
 * (which stays as it is), the first 3 and the last 4 digits are kept and
 * every other digit becomes '*'; separators stay in place. A number whose
 * digits (prefix removed, as cdr_number_normalise) are exactly `own` (may
 * be NULL) is left as it is. Everything that is not a digit of a masked
 * number is copied unchanged. Writes the result and a NUL into buf, which
 * must hold n + 1 bytes (the result is never longer than the input);
 * returns its length.
 */
size_t cdr_text_mask_numbers(const char *s, size_t n, const char *own, char *buf);

#ifdef __cplusplus
}
#endif
#endif
