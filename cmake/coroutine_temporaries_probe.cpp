// Run at configure time (CMakeLists.txt): exits 1 when the compiler destroys a temporary of a
// co_await expression more often than it constructs it. GCC 12 does so for a lambda closure and
// for an aggregate; in kpid that freed a request handler's captured services twice under load.
#include <coroutine>
#include <exception>

namespace {

int constructed = 0;
int destroyed = 0;

struct Counted {
  Counted() { ++constructed; }
  Counted(const Counted&) { ++constructed; }
  Counted& operator=(const Counted&) = default;
  ~Counted() { ++destroyed; }
};

// A coroutine that runs eagerly to its end, frame freed on completion.
struct Eager {
  struct promise_type {
    Eager get_return_object() { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
};

// Suspends, then resumes the coroutine at once.
struct Bounce {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) noexcept { h.resume(); }
  void await_resume() const noexcept {}
};

template <typename Fn>
Bounce hand_over(Fn) {
  return {};
}

struct Aggregate {
  Counted counted;
};

Bounce look_at(const Aggregate&) { return {}; }

Eager temporaries_in_co_await() {
  Counted captured;
  co_await hand_over([captured] { (void)captured; });
  co_await look_at(Aggregate{});
}

}  // namespace

int main() {
  temporaries_in_co_await();
  return constructed == destroyed ? 0 : 1;
}
