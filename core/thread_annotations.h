// Clang thread-safety annotations: lock contracts the compiler checks.
//
//   class Account {
//    public:
//     void Credit(Money m) EXCLUDES(mu_);
//    private:
//     void CreditLocked(Money m) REQUIRES(mu_);
//     core::Mutex mu_;
//     Money balance_ GUARDED_BY(mu_);
//   };
//
// With clang and -Wthread-safety (the BOURSE_THREAD_SAFETY build option, see
// README.md "Build options"), reading balance_ without holding mu_, or calling
// CreditLocked without it, is a compile error. With any other compiler the
// macros expand to nothing. Names follow clang's documentation
// (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html) and leveldb's
// port/thread_annotations.h; the capability types are in core/mutex.h.
#pragma once

#if defined(__clang__)
#define BOURSE_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define BOURSE_THREAD_ANNOTATION_(x)  // no-op
#endif

// On a class: its objects are capabilities (locks), e.g. CAPABILITY("mutex").
#ifndef CAPABILITY
#define CAPABILITY(x) BOURSE_THREAD_ANNOTATION_(capability(x))
#endif
// On an RAII class that holds a capability for its lifetime.
#ifndef SCOPED_CAPABILITY
#define SCOPED_CAPABILITY BOURSE_THREAD_ANNOTATION_(scoped_lockable)
#endif

// On a field: reads need the capability held (shared or exclusive), writes
// need it exclusive. PT_GUARDED_BY: the same for what a pointer field points at.
#ifndef GUARDED_BY
#define GUARDED_BY(x) BOURSE_THREAD_ANNOTATION_(guarded_by(x))
#endif
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) BOURSE_THREAD_ANNOTATION_(pt_guarded_by(x))
#endif
// On a capability field: the order in which locks must be taken.
#ifndef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) BOURSE_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#endif
#ifndef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) BOURSE_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#endif

// On a function: callers must hold the capabilities (exclusively / shared).
#ifndef REQUIRES
#define REQUIRES(...) BOURSE_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#endif
#ifndef REQUIRES_SHARED
#define REQUIRES_SHARED(...) BOURSE_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#endif
// On a function: callers must NOT hold the capabilities (it takes them itself).
#ifndef EXCLUDES
#define EXCLUDES(...) BOURSE_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#endif

// On a function that takes / releases a capability and returns with it
// held / released (no argument: `this`).
#ifndef ACQUIRE
#define ACQUIRE(...) BOURSE_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#endif
#ifndef ACQUIRE_SHARED
#define ACQUIRE_SHARED(...) BOURSE_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#endif
#ifndef RELEASE
#define RELEASE(...) BOURSE_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#endif
#ifndef RELEASE_SHARED
#define RELEASE_SHARED(...) BOURSE_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#endif
// On a function that tries to take a capability; the first argument is the
// return value meaning success.
#ifndef TRY_ACQUIRE
#define TRY_ACQUIRE(...) BOURSE_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#endif
#ifndef TRY_ACQUIRE_SHARED
#define TRY_ACQUIRE_SHARED(...) \
  BOURSE_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))
#endif
// On a function that checks at run time that the capability is held; the
// analysis assumes it is afterwards.
#ifndef ASSERT_CAPABILITY
#define ASSERT_CAPABILITY(x) BOURSE_THREAD_ANNOTATION_(assert_capability(x))
#endif
#ifndef ASSERT_SHARED_CAPABILITY
#define ASSERT_SHARED_CAPABILITY(x) BOURSE_THREAD_ANNOTATION_(assert_shared_capability(x))
#endif
// On a function returning a reference to a capability (an accessor).
#ifndef RETURN_CAPABILITY
#define RETURN_CAPABILITY(x) BOURSE_THREAD_ANNOTATION_(lock_returned(x))
#endif

// Turns the analysis off for one function. Use it only where the analysis
// cannot express a correct pattern, with a comment saying why.
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS BOURSE_THREAD_ANNOTATION_(no_thread_safety_analysis)
#endif
