// A small client for the broker's REST API that signs requests as DESIGN §7
// says. The tests, the load driver, the `bourse` CLI and the agents share it.
//
//   BOURSE_ASSIGN_OR_RETURN(PrivateKey key, PrivateKey::LoadPem("admin.pem"));
//   Client c("http://127.0.0.1:8080", key);
//   BOURSE_ASSIGN_OR_RETURN(nlohmann::json slice,
//       c.Call("POST", "/v1/slices", {{"name", "mit_web"}}));      // signed
//   BOURSE_ASSIGN_OR_RETURN(nlohmann::json head, c.Call("GET", "/v1/ledger/head"));
//   HttpReply raw = c.Send("POST", "/v1/slices", "{bad", /*sign=*/true).value();
//
// Call() signs every method but GET (signed GETs: CallSigned). Errors from
// Call: the broker's error mapped back to its Status code with its message;
// unavailable when the broker cannot be reached.
//
// Thread safety: a Client holds one keep-alive connection and is not safe to
// share between threads; make one per thread (they are cheap).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/keys.h"
#include "core/status.h"

namespace bourse::clients {

struct HttpReply {
  int status = 0;
  std::string body;
  nlohmann::json json;  // parsed body, or null when it is not JSON
  std::map<std::string, std::string> headers;
  bool ok() const { return status >= 200 && status < 300; }
  // "error.code" of a DESIGN §7 error body, or "".
  std::string error_code() const;
  std::string error_message() const;
};

struct ClientOptions {
  int connect_timeout_s = 5;
  int read_timeout_s = 30;
  std::string ca_file;                 // HTTPS: trust this CA file (empty: no verification)
  const core::Clock* clock = nullptr;  // signing time; nullptr: SystemClock
};

class Client {
 public:
  // url: "http://host:port" or "https://host:port" (no path).
  explicit Client(std::string url, std::optional<core::PrivateKey> key = std::nullopt,
                  ClientOptions options = {});
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  // Sends one request. When `sign`, adds the four Bourse-* headers for this
  // exact method, path (with query) and body; `extra_headers` override them
  // (tests forge bad signatures that way). Errors: unavailable when the
  // request could not be sent or no reply arrived; failed_precondition when
  // signing was asked for without a key.
  core::Result<HttpReply> Send(std::string_view method, std::string_view path_with_query,
                               std::string_view body, bool sign,
                               const std::map<std::string, std::string>& extra_headers = {});

  // JSON in, JSON out. Signs unless method is GET. A non-2xx reply becomes a
  // Status with the code named in the error body.
  core::Result<nlohmann::json> Call(std::string_view method, std::string_view path,
                                    const nlohmann::json& body = nullptr);
  // Same, always signed (node guards' GETs).
  core::Result<nlohmann::json> CallSigned(std::string_view method, std::string_view path,
                                          const nlohmann::json& body = nullptr);

  const std::optional<core::PrivateKey>& key() const { return key_; }
  const std::string& url() const { return url_; }

 private:
  core::Result<nlohmann::json> CallImpl(std::string_view method, std::string_view path,
                                        const nlohmann::json& body, bool sign);
  struct Impl;
  std::string url_;
  std::optional<core::PrivateKey> key_;
  ClientOptions options_;
  std::unique_ptr<Impl> impl_;
};

// The Status for a DESIGN §7 error reply (code name -> StatusCode; unknown
// names and non-JSON bodies map by HTTP status).
core::Status StatusFromReply(const HttpReply& reply);

// Percent-encodes a path segment (keys contain only URL-safe characters, but
// callers should not have to know).
std::string EscapeSegment(std::string_view s);

}  // namespace bourse::clients
