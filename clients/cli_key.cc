// `bourse key new FILE` / `bourse key pub FILE`: Ed25519 key files (PEM, 0600).
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "clients/cli.h"
#include "clients/cli_context.h"
#include "core/keys.h"

namespace bourse::clients {
namespace {

// Creates FILE (O_EXCL, 0600): never overwrites a key.
core::Status WriteNewPem(const std::string& path, const std::string& pem) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 && errno == EEXIST) {
    return core::AlreadyExists(path + " exists; a key file is never overwritten");
  }
  if (fd < 0) return core::Unavailable("cannot create " + path + ": " + std::strerror(errno));
  bool ok = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok) {
    ::unlink(path.c_str());
    return core::Unavailable("cannot write " + path);
  }
  return core::Status::Ok();
}

void PrintKey(CliContext& ctx, const std::string& path, const core::PublicKey& pub) {
  ctx.Emit({{"file", path}, {"key", pub.ToText()}},
           [&] { std::printf("%s\n", pub.ToText().c_str()); });
}

core::Status KeyNew(CliContext& ctx, const std::string& path) {
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey k, core::PrivateKey::Generate());
  BOURSE_RETURN_IF_ERROR(WriteNewPem(path, k.ToPem()));
  PrintKey(ctx, path, k.public_key());
  return core::Status::Ok();
}

core::Status KeyPub(CliContext& ctx, const std::string& path) {
  BOURSE_ASSIGN_OR_RETURN(core::PrivateKey k, core::PrivateKey::LoadPem(path));
  PrintKey(ctx, path, k.public_key());
  return core::Status::Ok();
}

}  // namespace

void AddKeyCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* noun = app.add_subcommand("key", "Ed25519 key files: make one, print its public key");
  noun->require_subcommand(1);
  noun->footer("example: bourse key new alice.pem");
  auto file = std::make_shared<std::string>();
  CLI::App* mk = noun->add_subcommand("new", "FILE: a new key (PEM, 0600; never overwrites)");
  mk->add_option("FILE", *file, "where to write it")->required();
  ctx.Bind(mk, [&ctx, file] { return KeyNew(ctx, *file); });
  CLI::App* pub = noun->add_subcommand("pub", "FILE: print the public key of a key file");
  pub->add_option("FILE", *file, "a PEM key file")->required();
  ctx.Bind(pub, [&ctx, file] { return KeyPub(ctx, *file); });
}

}  // namespace bourse::clients
