// AccountSubmitter: signs and submits transactions from one account, many at a time.
//
// A ledger accepts an account's transactions only in nonce order (tx.nonce == account nonce + 1).
// Waiting for each receipt before signing the next caps an account at one transaction per commit
// (~150/s on a durable embedded ledger). This submitter instead hands out nonces from a local
// counter and submits in nonce order under its lock, then waits for the receipt outside it, so
// concurrent callers share the ledger's group commits.
//
// When a transaction fails, every later one already submitted fails too (a nonce gap). The
// counter is then re-read from the ledger, and those later transactions are signed again with
// new nonces and resubmitted, up to kMaxAttempts times (a transaction can land behind several
// failing ones in a row); the failed one's error goes to its caller. Each failure re-reads the counter only once: failures of transactions submitted before
// the latest re-read only resubmit.
//
// Both backends keep the submission order: the embedded one queues for its committer, the
// remote one queues for a single sender that posts batches in order.
//
// Thread-safety: submit() may be called from any thread, concurrently.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "crypto/keys.hpp"
#include "ledger/ledger.hpp"

namespace mercato::ledger {

class AccountSubmitter {
 public:
  static constexpr int kMaxAttempts = 32;

  // `ledger` and `identity` must outlive the submitter.
  AccountSubmitter(Ledger& ledger, const crypto::Identity& identity, std::string chainId);

  // Signs (with the next nonce), submits and waits for the receipt. `nonceOut` gets the nonce of
  // the accepted transaction.
  Result<TxReceipt> submit(TxKind kind, const TxBody& body, uint64_t* nonceOut = nullptr);

  const std::string& address() const { return address_; }

 private:
  Ledger& ledger_;
  const crypto::Identity& identity_;
  const std::string chainId_;
  const std::string address_;
  std::mutex mu_;
  std::optional<uint64_t> next_;  // the next nonce to hand out; unset: read it from the ledger
  uint64_t epoch_ = 0;            // bumped at every re-read
};

}  // namespace mercato::ledger
