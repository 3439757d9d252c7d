// Lock-free single-producer single-consumer ring buffer for real-time audio callbacks.
// The real-time side only touches two atomics and memcpy: no allocation, no locks, no syscalls.
// Blocking waits (with a timeout) poll with short sleeps and belong on the non-real-time side only.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

namespace eddy {

template <typename T>
class SpscRing {
  static_assert(std::is_trivially_copyable_v<T>, "the ring copies elements with memcpy");

 public:
  // Capacity is rounded up to a power of two so that indices wrap with a mask.
  explicit SpscRing(size_t min_capacity) : buffer_(RoundUpPow2(min_capacity)) {
    mask_ = buffer_.size() - 1;
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  size_t capacity() const noexcept { return buffer_.size(); }
  size_t readable() const noexcept {
    return static_cast<size_t>(written_.load(std::memory_order_acquire) -
                               read_.load(std::memory_order_acquire));
  }
  size_t writable() const noexcept { return capacity() - readable(); }

  // Producer: copies up to `n` elements, returns how many fit.
  size_t Write(const T* data, size_t n) noexcept {
    const uint64_t w = written_.load(std::memory_order_relaxed);
    const uint64_t r = read_.load(std::memory_order_acquire);
    n = std::min<size_t>(n, capacity() - static_cast<size_t>(w - r));
    CopyIn(static_cast<size_t>(w & mask_), data, n);
    written_.store(w + n, std::memory_order_release);
    return n;
  }

  // Consumer: copies up to `n` elements out, returns how many there were.
  size_t Read(T* out, size_t n) noexcept {
    const uint64_t r = read_.load(std::memory_order_relaxed);
    const uint64_t w = written_.load(std::memory_order_acquire);
    n = std::min<size_t>(n, static_cast<size_t>(w - r));
    CopyOut(static_cast<size_t>(r & mask_), out, n);
    read_.store(r + n, std::memory_order_release);
    return n;
  }

  // Non-real-time side only: wait until `n` elements can be read (or written); false on timeout.
  bool WaitReadable(size_t n, std::chrono::nanoseconds timeout) const {
    return PollUntil([&] { return readable() >= n; }, timeout);
  }
  bool WaitWritable(size_t n, std::chrono::nanoseconds timeout) const {
    return PollUntil([&] { return writable() >= n; }, timeout);
  }

  // Totals since construction (monotonic; never wrap in practice).
  uint64_t total_written() const noexcept { return written_.load(std::memory_order_acquire); }
  uint64_t total_read() const noexcept { return read_.load(std::memory_order_acquire); }

 private:
  static size_t RoundUpPow2(size_t n) {
    size_t c = 1;
    while (c < n) c <<= 1;
    return c;
  }
  void CopyIn(size_t at, const T* data, size_t n) noexcept {
    const size_t first = std::min(n, capacity() - at);
    if (first > 0) std::memcpy(buffer_.data() + at, data, first * sizeof(T));
    if (n > first) std::memcpy(buffer_.data(), data + first, (n - first) * sizeof(T));
  }
  void CopyOut(size_t at, T* out, size_t n) const noexcept {
    const size_t first = std::min(n, capacity() - at);
    if (first > 0) std::memcpy(out, buffer_.data() + at, first * sizeof(T));
    if (n > first) std::memcpy(out + first, buffer_.data(), (n - first) * sizeof(T));
  }
  template <typename Ready>
  static bool PollUntil(Ready ready, std::chrono::nanoseconds timeout) {
    // Polling keeps the real-time side free of any notification syscall; 1 ms granularity is far
    // below the buffer sizes audio uses.
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!ready()) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      std::this_thread::sleep_for(
          std::min<std::chrono::nanoseconds>(std::chrono::milliseconds(1), deadline - now));
    }
    return true;
  }

  std::vector<T> buffer_;
  size_t mask_ = 0;
  alignas(64) std::atomic<uint64_t> written_{0};
  alignas(64) std::atomic<uint64_t> read_{0};
};

}  // namespace eddy
