// The service manager's readiness protocol (systemd's sd_notify(3), written out
// here rather than linking libsystemd): a daemon started with Type=notify sends
// "READY=1" to the datagram socket named by $NOTIFY_SOCKET once it serves, and
// "STOPPING=1" when it begins to stop. The node guard sends READY=1 only after
// its boot pass (docs/nodeguard.md "Boot"), so `systemctl start` returns when
// the node enforces what is bound to it.
//
//   BOURSE_RETURN_IF_ERROR(core::NotifyServiceManager("READY=1\nSTATUS=enforcing 3 slivers"));
//
// Without $NOTIFY_SOCKET (not under systemd, or Type=simple) it does nothing.
// A path starting with '@' is an abstract socket, as in sd_notify(3).
//
// Thread safety: safe from any thread (one socket per call).
#pragma once

#include <string_view>

#include "core/status.h"

namespace bourse::core {

// Sends `state` (newline-separated VAR=value assignments) to $NOTIFY_SOCKET.
// Ok when the variable is unset or empty. Errors: invalid_argument for a
// socket path that is not absolute, abstract or too long; unavailable when the
// datagram cannot be sent.
Status NotifyServiceManager(std::string_view state);

}  // namespace bourse::core
