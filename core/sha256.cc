#include "core/sha256.h"

#include <openssl/evp.h>

#include <cstdlib>

namespace bourse::core {
namespace {

const EVP_MD* FetchedSha256() {
  static EVP_MD* md = [] {
    EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    if (m == nullptr) std::abort();  // OpenSSL without SHA-256 cannot run bourse
    return m;
  }();
  return md;
}

struct CtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

EVP_MD_CTX* ThreadCtx() {
  thread_local std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx(EVP_MD_CTX_new());
  return ctx.get();
}

}  // namespace

Digest Sha256(std::span<const uint8_t> data) {
  EVP_MD_CTX* ctx = ThreadCtx();
  Digest out;
  unsigned int len = 0;
  if (EVP_DigestInit_ex2(ctx, FetchedSha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx, data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) {
    std::abort();
  }
  return out;
}

Digest Sha256(std::string_view data) {
  return Sha256(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()),
                                         data.size()));
}

struct Sha256Hasher::Impl {
  std::unique_ptr<EVP_MD_CTX, CtxDeleter> ctx{EVP_MD_CTX_new()};
};

Sha256Hasher::Sha256Hasher() : impl_(std::make_unique<Impl>()) {
  if (EVP_DigestInit_ex2(impl_->ctx.get(), FetchedSha256(), nullptr) != 1) std::abort();
}
Sha256Hasher::~Sha256Hasher() = default;

void Sha256Hasher::Update(std::span<const uint8_t> data) {
  if (EVP_DigestUpdate(impl_->ctx.get(), data.data(), data.size()) != 1) std::abort();
}
void Sha256Hasher::Update(std::string_view data) {
  Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

Digest Sha256Hasher::Finish() {
  Digest out;
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), out.data(), &len) != 1 ||
      EVP_DigestInit_ex2(impl_->ctx.get(), FetchedSha256(), nullptr) != 1) {
    std::abort();
  }
  return out;
}

}  // namespace bourse::core
