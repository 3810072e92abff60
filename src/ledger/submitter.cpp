#include "ledger/submitter.hpp"

#include <future>

namespace mercato::ledger {

namespace {

// The ledger's answer to a transaction whose nonce is not the account's next one.
bool isNonceError(const Status& s) {
  return s.code() == Code::kFailedPrecondition && s.message().rfind("tx.nonce ", 0) == 0;
}

}  // namespace

AccountSubmitter::AccountSubmitter(Ledger& ledger, const crypto::Identity& identity,
                                   std::string chainId)
    : ledger_(ledger),
      identity_(identity),
      chainId_(std::move(chainId)),
      address_(identity.address()) {}

Result<TxReceipt> AccountSubmitter::submit(TxKind kind, const TxBody& body, uint64_t* nonceOut) {
  Status last;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    uint64_t nonce = 0, epoch = 0;
    std::promise<Result<TxReceipt>> answer;
    auto receipt = answer.get_future();
    {
      std::lock_guard lock(mu_);
      if (!next_) {
        ASSIGN_OR_RETURN(uint64_t n, ledger_.nextNonce(address_));
        next_ = n;
      }
      nonce = (*next_)++;
      epoch = epoch_;
      // Under the lock: the ledger queues transactions in the order they are submitted.
      ledger_.submit(signTx(Tx{chainId_, kind, address_, nonce, body}, identity_),
                     [&answer](Result<TxReceipt> r) { answer.set_value(std::move(r)); });
    }
    Result<TxReceipt> r = receipt.get();
    if (r.isOk()) {
      if (nonceOut) *nonceOut = nonce;
      return r;
    }
    {
      std::lock_guard lock(mu_);
      if (epoch == epoch_) {  // the first failure since the last re-read: re-read once
        next_.reset();
        ++epoch_;
      }
    }
    if (!isNonceError(r.status())) return r.status();
    last = r.status();  // a later transaction of a gap: sign it again
  }
  return last;
}

}  // namespace mercato::ledger
