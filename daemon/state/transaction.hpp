#pragma once

#include "util/error.hpp"

namespace state {

class Database;

// One write transaction (BEGIN IMMEDIATE), rolled back when destroyed uncommitted. The
// engine opens one per batch step (DESIGN §2.2) so 50 slots cost one fsync, not 50.
class Transaction
{
public:
  // Starts the transaction; fails if one is already open on `db` or the write lock is busy.
  static util::Result<Transaction> begin(Database& db);

  ~Transaction();
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  // Commits; on error the transaction is rolled back when this object is destroyed.
  util::Result<void> commit();

  // Rolls back now (the destructor does it too).
  void rollback();

private:
  explicit Transaction(Database& db);

  Database* m_db;
};

} // namespace state
