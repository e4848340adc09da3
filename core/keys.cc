#include "core/keys.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "core/encoding.h"

namespace bourse::core {
namespace {

constexpr std::string_view kKeyPrefix = "ed25519:";

// OpenSSL's default passphrase callback reads the terminal: a service loading
// an encrypted key would hang on a prompt. Bourse keys are never encrypted.
int NoPassphrase(char*, int, int, void*) { return -1; }

// An Ed25519 PKCS#8 PEM is 119 bytes; anything this large is not a key file
// (and a length beyond INT_MAX would make BIO_new_mem_buf call strlen).
constexpr size_t kMaxPemBytes = 64 * 1024;

// OpenSSL leaves reasons for a failure on the calling thread's error queue.
// Stale entries there make later, unrelated calls on the same thread (TLS's
// SSL_get_error above all) report errors that did not happen, so every failure
// path here empties the queue once the Status holds the reason.
void ClearOpenSslErrors() { ERR_clear_error(); }

struct PkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// libsodium is initialised once, before the first key operation.
void EnsureSodium() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) std::abort();  // no usable libsodium: nothing can be signed
  });
}

}  // namespace

struct PrivateKey::Impl {
  explicit Impl(PkeyPtr k) : pkey(std::move(k)) {}
  ~Impl() { sodium_memzero(sk, sizeof sk); }
  PkeyPtr pkey;                            // for the PEM form
  uint8_t sk[crypto_sign_SECRETKEYBYTES];  // libsodium's: seed || public key
};

std::string SignatureToText(const Signature& sig) { return Base64UrlEncode(sig); }

Result<Signature> SignatureFromText(std::string_view text) {
  auto raw = Base64UrlDecode(text);
  if (!raw.ok()) return raw.status().WithContext("signature");
  if (raw->size() != 64) {
    return InvalidArgument("signature: expected 64 bytes, got " + std::to_string(raw->size()));
  }
  Signature sig;
  std::memcpy(sig.data(), raw->data(), 64);
  return sig;
}

Result<PublicKey> PublicKey::FromRaw(std::span<const uint8_t> raw) {
  if (raw.size() != 32) {
    return InvalidArgument("public key: expected 32 bytes, got " + std::to_string(raw.size()));
  }
  PublicKey out;
  std::memcpy(out.raw_.data(), raw.data(), 32);
  out.set_ = true;
  return out;
}

Result<PublicKey> PublicKey::FromText(std::string_view text) {
  if (text.substr(0, kKeyPrefix.size()) != kKeyPrefix) {
    return InvalidArgument("public key: must start with \"ed25519:\"");
  }
  auto raw = Base64UrlDecode(text.substr(kKeyPrefix.size()));
  if (!raw.ok()) return raw.status().WithContext("public key");
  return FromRaw(*raw);
}

std::string PublicKey::ToText() const { return std::string(kKeyPrefix) + Base64UrlEncode(raw_); }

Status PublicKey::Verify(std::span<const uint8_t> message, std::span<const uint8_t> sig) const {
  if (!set_) return Unauthenticated("signature does not verify: no key");
  if (sig.size() != crypto_sign_BYTES) {
    return Unauthenticated("signature does not verify: not 64 bytes");
  }
  EnsureSodium();
  if (crypto_sign_verify_detached(sig.data(), message.data(), message.size(), raw_.data()) != 0) {
    return Unauthenticated("signature does not verify");
  }
  return Status::Ok();
}

Result<PrivateKey> PrivateKey::Generate() {
  EVP_PKEY* raw = nullptr;
  EVP_PKEY_CTX* pctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr);
  if (pctx == nullptr) return Internal("keys: cannot create Ed25519 context");
  bool ok = EVP_PKEY_keygen_init(pctx) == 1 && EVP_PKEY_keygen(pctx, &raw) == 1;
  EVP_PKEY_CTX_free(pctx);
  if (!ok) {
    ClearOpenSslErrors();
    return Internal("keys: Ed25519 key generation failed");
  }
  uint8_t seed[32];
  size_t len = sizeof seed;
  PkeyPtr pkey(raw);
  if (EVP_PKEY_get_raw_private_key(pkey.get(), seed, &len) != 1 || len != 32) {
    return Internal("keys: cannot read generated key");
  }
  auto out = FromSeed(seed);
  OPENSSL_cleanse(seed, sizeof seed);
  return out;
}

Result<PrivateKey> PrivateKey::FromSeed(std::span<const uint8_t> seed) {
  if (seed.size() != 32) {
    return InvalidArgument("private key: expected a 32-byte seed, got " +
                           std::to_string(seed.size()));
  }
  PkeyPtr pkey(EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, seed.data(), seed.size()));
  if (!pkey) {
    ClearOpenSslErrors();
    return InvalidArgument("private key: not a valid Ed25519 seed");
  }
  EnsureSodium();
  auto impl = std::make_shared<Impl>(std::move(pkey));
  uint8_t pub[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_seed_keypair(pub, impl->sk, seed.data());
  PrivateKey out;
  auto pk = PublicKey::FromRaw(pub);
  if (!pk.ok()) return pk.status();
  out.public_ = *pk;
  out.impl_ = std::move(impl);
  return out;
}

Result<PrivateKey> PrivateKey::FromPem(std::string_view pem) {
  if (pem.size() > kMaxPemBytes) {
    return InvalidArgument("private key: PEM text larger than 64 KiB");
  }
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (bio == nullptr) return Internal("keys: BIO allocation failed");
  EVP_PKEY* raw = PEM_read_bio_PrivateKey(bio, nullptr, NoPassphrase, nullptr);
  BIO_free(bio);
  if (raw == nullptr) {
    ClearOpenSslErrors();
    if (pem.find("ENCRYPTED") != std::string_view::npos) {
      return InvalidArgument(
          "private key: encrypted PEM keys are not supported (protect the file with mode 0600)");
    }
    return InvalidArgument("private key: not a PEM private key");
  }
  PkeyPtr pkey(raw);
  if (EVP_PKEY_get_id(pkey.get()) != EVP_PKEY_ED25519) {
    return InvalidArgument("private key: not an Ed25519 key");
  }
  uint8_t seed[32];
  size_t len = sizeof seed;
  if (EVP_PKEY_get_raw_private_key(pkey.get(), seed, &len) != 1 || len != 32) {
    ClearOpenSslErrors();
    return InvalidArgument("private key: cannot read the Ed25519 seed");
  }
  auto out = FromSeed(seed);
  OPENSSL_cleanse(seed, sizeof seed);
  return out;
}

Result<PrivateKey> PrivateKey::LoadPem(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("private key file " + path + " does not exist");
    return Unavailable("cannot open private key file " + path + ": " + std::strerror(errno));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return Unavailable("cannot stat private key file " + path);
  }
  if ((st.st_mode & 077) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("private key file " + path +
                            " is accessible by group or others (mode " + mode +
                            "); run chmod 600 on it");
  }
  std::string pem;
  char buf[4096];
  ssize_t n;
  while (pem.size() <= kMaxPemBytes && (n = ::read(fd, buf, sizeof buf)) > 0) {
    pem.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto key = FromPem(pem);
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key.ok()) return key.status().WithContext(path);
  return key;
}

std::string PrivateKey::ToPem() const {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr || PEM_write_bio_PrivateKey(bio, impl_->pkey.get(), nullptr, nullptr, 0,
                                                 nullptr, nullptr) != 1) {
    std::abort();
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

Status PrivateKey::SavePem(const std::string& path) const {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  ::fchmod(fd, 0600);  // whatever the umask said
  std::string pem = ToPem();
  size_t off = 0;
  while (off < pem.size()) {
    ssize_t n = ::write(fd, pem.data() + off, pem.size() - off);
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      OPENSSL_cleanse(pem.data(), pem.size());
      return Unavailable("cannot write " + tmp + ": " + std::strerror(errno));
    }
    off += static_cast<size_t>(n);
  }
  OPENSSL_cleanse(pem.data(), pem.size());
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return Unavailable("cannot sync " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Unavailable("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Signature PrivateKey::Sign(std::span<const uint8_t> message) const {
  Signature sig;
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), impl_->sk);
  return sig;
}

Signature PrivateKey::Sign(std::string_view message) const {
  return Sign(
      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(message.data()), message.size()));
}

Result<PublicKey> PublicKeyCache::FromText(std::string_view text) {
  {
    MutexLock lock(&mu_);
    auto it = keys_.find(text);
    if (it != keys_.end()) return it->second;
  }
  BOURSE_ASSIGN_OR_RETURN(PublicKey key, PublicKey::FromText(text));
  MutexLock lock(&mu_);
  if (keys_.size() >= capacity_) keys_.clear();
  keys_.emplace(std::string(text), key);
  return key;
}

}  // namespace bourse::core
