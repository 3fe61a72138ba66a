// xtext (RFC 3461 section 4), the encoding of the DSN parameters ENVID and
// ORCPT and of the AUTH= parameter of MAIL FROM (RFC 4954 section 5):
//   xtext   = *( xchar / hexchar )
//   xchar   = "!" .. "~", except "+" and "="
//   hexchar = "+" followed by two upper-case hex digits
// Pure functions, no I/O.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace maild {

// Decodes strictly: anything outside the grammar (a space, a control, a
// non-ASCII byte, "=", a "+" without two digits after it, lower-case hex)
// makes it fail. The empty text decodes to the empty string. The result may
// hold any byte; callers that store it check what they allow.
std::optional<std::string> xtext_decode(std::string_view text);

// Encodes every byte that is not an xchar as "+XX"; the result decodes back
// to `raw`, and text that needed no encoding is unchanged.
std::string xtext_encode(std::string_view raw);

} // namespace maild
