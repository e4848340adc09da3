#include "core/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace bourse::core {

Status NotifyServiceManager(std::string_view state) {
  const char* env = std::getenv("NOTIFY_SOCKET");
  if (env == nullptr || env[0] == '\0') return Status::Ok();
  std::string path = env;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || path.size() >= sizeof addr.sun_path) {
    return InvalidArgument("NOTIFY_SOCKET: not an absolute or abstract socket path: " + path);
  }
  memcpy(addr.sun_path, path.data(), path.size());
  if (path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("NOTIFY_SOCKET: socket: ") + strerror(errno));
  ssize_t n = sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&addr), len);
  int err = errno;
  close(fd);
  if (n < 0 || static_cast<size_t>(n) != state.size()) {
    return Unavailable("NOTIFY_SOCKET " + path + ": " + (n < 0 ? strerror(err) : "short write"));
  }
  return Status::Ok();
}

}  // namespace bourse::core
