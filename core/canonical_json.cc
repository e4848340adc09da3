#include "core/canonical_json.h"

#include <algorithm>

#include <vector>

namespace bourse::core {
namespace {

using nlohmann::json;

// Validates UTF-8 (no overlongs, no surrogates, <= U+10FFFF) and reports
// whether any code point >= U+E000 occurs (where UTF-8 byte order and UTF-16
// code-unit order can disagree).
bool ValidUtf8(std::string_view s, bool* high) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    if (cp >= 0xE000) *high = true;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

std::u16string ToUtf16(std::string_view s) {
  std::u16string out;
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    uint32_t cp;
    int n;
    if (c < 0x80) {
      cp = c;
      n = 0;
    } else if ((c & 0xE0) == 0xC0) {
      cp = c & 0x1F;
      n = 1;
    } else if ((c & 0xF0) == 0xE0) {
      cp = c & 0x0F;
      n = 2;
    } else {
      cp = c & 0x07;
      n = 3;
    }
    for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    i += static_cast<size_t>(n) + 1;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (cp >> 10));
      out += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

void AppendString(std::string_view s, std::string* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(ch);
        }
    }
  }
  out->push_back('"');
}

Status Append(const json& v, std::string* out, std::string& path) {
  switch (v.type()) {
    case json::value_t::null:
      out->append("null");
      return Status::Ok();
    case json::value_t::boolean:
      out->append(v.get<bool>() ? "true" : "false");
      return Status::Ok();
    case json::value_t::number_integer: {
      int64_t n = v.get<int64_t>();
      if (n > kMaxSafeInteger || n < -kMaxSafeInteger) {
        return InvalidArgument("canonical json: " + path + ": integer " + std::to_string(n) +
                               " is outside +/-(2^53-1)");
      }
      out->append(std::to_string(n));
      return Status::Ok();
    }
    case json::value_t::number_unsigned: {
      uint64_t n = v.get<uint64_t>();
      if (n > static_cast<uint64_t>(kMaxSafeInteger)) {
        return InvalidArgument("canonical json: " + path + ": integer " + std::to_string(n) +
                               " is outside +/-(2^53-1)");
      }
      out->append(std::to_string(n));
      return Status::Ok();
    }
    case json::value_t::number_float:
      return InvalidArgument("canonical json: " + path +
                             ": floating-point numbers are not allowed");
    case json::value_t::string: {
      const auto& s = v.get_ref<const std::string&>();
      bool high = false;
      if (!ValidUtf8(s, &high)) {
        return InvalidArgument("canonical json: " + path + ": string is not valid UTF-8");
      }
      AppendString(s, out);
      return Status::Ok();
    }
    case json::value_t::array: {
      out->push_back('[');
      size_t i = 0;
      const size_t base = path.size();
      for (const auto& e : v) {
        if (i > 0) out->push_back(',');
        path += "[" + std::to_string(i) + "]";
        Status st = Append(e, out, path);
        path.resize(base);
        if (!st.ok()) return st;
        ++i;
      }
      out->push_back(']');
      return Status::Ok();
    }
    case json::value_t::object: {
      // nlohmann's object is a std::map: keys in UTF-8 byte (= code point)
      // order. RFC 8785 wants UTF-16 code-unit order, which differs only when
      // a key holds a code point >= U+E000.
      std::vector<const std::string*> keys;
      keys.reserve(v.size());
      bool high = false;
      for (auto it = v.begin(); it != v.end(); ++it) {
        const std::string& k = it.key();
        if (!ValidUtf8(k, &high)) {
          return InvalidArgument("canonical json: " + path + ": key is not valid UTF-8");
        }
        keys.push_back(&k);
      }
      if (high) {
        std::stable_sort(keys.begin(), keys.end(), [](const std::string* a, const std::string* b) {
          return ToUtf16(*a) < ToUtf16(*b);
        });
      }
      out->push_back('{');
      const size_t base = path.size();
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendString(*keys[i], out);
        out->push_back(':');
        path += "." + *keys[i];
        Status st = Append(v.at(*keys[i]), out, path);
        path.resize(base);
        if (!st.ok()) return st;
      }
      out->push_back('}');
      return Status::Ok();
    }
    case json::value_t::binary:
    case json::value_t::discarded:
      return InvalidArgument("canonical json: " + path + ": value has no JSON form");
  }
  return Internal("canonical json: unknown value type");
}

// Builds a DOM while refusing duplicates, floats and deep nesting.
class StrictSax {
 public:
  explicit StrictSax(const JsonParseOptions& opt) : opt_(opt) {}

  bool null() { return Put(json(nullptr)); }
  bool boolean(bool b) { return Put(json(b)); }
  bool number_integer(json::number_integer_t n) { return Put(json(n)); }
  bool number_unsigned(json::number_unsigned_t n) { return Put(json(n)); }
  bool number_float(json::number_float_t f, const std::string& text) {
    if (!opt_.allow_floats) {
      return Fail("number " + text + " is not an integer (floating-point numbers are not allowed)");
    }
    return Put(json(f));
  }
  bool string(json::string_t& s) { return Put(json(std::move(s))); }
  bool binary(json::binary_t&) { return Fail("binary values are not JSON"); }
  bool start_object(std::size_t) { return Push(json::object()); }
  bool key(json::string_t& k) {
    // The object under construction holds every key seen so far: a key it
    // already has is a duplicate (kept: the last one, when allowed).
    auto& obj = stack_.back()->get_ref<json::object_t&>();
    if (obj.find(k) != obj.end()) {
      if (!opt_.allow_duplicate_keys) return Fail("duplicate key \"" + k.substr(0, 64) + "\"");
      obj.erase(k);
    }
    pending_key_ = std::move(k);
    return true;
  }
  bool end_object() {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) { return Push(json::array()); }
  bool end_array() {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) {
    std::string what = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." -> keep the tail,
    // since the line and column would only repeat the offset less precisely.
    auto p = what.find("] ");
    if (p != std::string::npos) what = what.substr(p + 2);
    if (what.rfind("parse error at line", 0) == 0) {
      p = what.find(": ");
      if (p != std::string::npos) what = what.substr(p + 2);
    }
    // nlohmann counts the bytes read, the failing one included: report the
    // 0-based offset of that byte (the text's length when it ended early).
    error_ =
        "invalid JSON at byte " + std::to_string(position > 0 ? position - 1 : 0) + ": " + what;
    return false;
  }

  json& result() { return root_; }
  const std::string& error() const { return error_; }

 private:
  bool Fail(std::string msg) {
    error_ = std::move(msg);
    return false;
  }
  json* Slot(json v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    auto& obj = top.get_ref<json::object_t&>();
    return &obj.emplace(std::move(pending_key_), std::move(v)).first->second;
  }
  bool Put(json v) {
    Slot(std::move(v));
    return true;
  }
  bool Push(json v) {
    if (static_cast<int>(stack_.size()) >= opt_.max_depth) {
      return Fail("nesting deeper than " + std::to_string(opt_.max_depth));
    }
    stack_.push_back(Slot(std::move(v)));
    return true;
  }

  const JsonParseOptions& opt_;
  json root_;
  std::vector<json*> stack_;
  std::string pending_key_;
  std::string error_;
};

}  // namespace

Status AppendCanonicalJson(const nlohmann::json& value, std::string* out) {
  std::string path = "$";
  return Append(value, out, path);
}

Result<std::string> CanonicalJson(const nlohmann::json& value) {
  std::string out;
  BOURSE_RETURN_IF_ERROR(AppendCanonicalJson(value, &out));
  return out;
}

Result<nlohmann::json> ParseJson(std::string_view text, const JsonParseOptions& options) {
  // nlohmann reads a NUL byte as the end of input, so "{}\0<anything>" would
  // parse as "{}". A NUL can never occur in JSON text (raw control characters
  // are not allowed in strings either): refuse it up front.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return InvalidArgument("invalid JSON at byte " + std::to_string(nul) + ": NUL byte");
  }
  StrictSax sax(options);
  bool ok = json::sax_parse(text.begin(), text.end(), &sax, json::input_format_t::json,
                            /*strict=*/true, /*ignore_comments=*/false);
  if (!ok) {
    std::string err = sax.error().empty() ? "invalid JSON" : sax.error();
    return InvalidArgument(err);
  }
  return std::move(sax.result());
}

}  // namespace bourse::core
