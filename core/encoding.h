// Byte encodings used on the wire: base64url without padding (RFC 4648 §5)
// and lowercase hex.
//
//   std::string s = Base64UrlEncode(bytes);            // no '=' padding
//   BOURSE_ASSIGN_OR_RETURN(Bytes raw, Base64UrlDecode(s));
//   std::string h = HexEncode(digest);                 // lowercase
//
// Decoders refuse padding, characters outside the alphabet, impossible
// lengths and non-zero trailing bits (so every byte string has exactly one
// accepted text form).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace bourse::core {

using Bytes = std::vector<uint8_t>;

std::span<const uint8_t> AsBytes(std::string_view s);

std::string Base64UrlEncode(std::span<const uint8_t> data);
// Errors: invalid_argument naming the flaw.
Result<Bytes> Base64UrlDecode(std::string_view text);

std::string HexEncode(std::span<const uint8_t> data);
// Accepts lowercase and uppercase digits. Errors: invalid_argument.
Result<Bytes> HexDecode(std::string_view text);

}  // namespace bourse::core
