//! A small SEMOPS network in one process, on real HTTPS over loopback (or
//! plaintext HTTP with tokens allowed on loopback, [`Transport::Plaintext`]) and
//! real databases of the backend under test: a scheme root, two banks,
//! two regions (`eu`: dc-eu, cpp1, mpp1; `us`: dc-us, mpp2), a customer
//! (alice at bank1) and two merchants (bob at bank2 through mpp1, carol at
//! bank2 through mpp2).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mpay_bank::config::AccountPattern;
use mpay_bank::{
    AccountId, ApiToken, Bank, BankConfig, BankIdentity, Caller, Deposit, Mandate, OpenAccount,
    Operation, PeerBank, issue_bank_certificate,
};
use mpay_identity::{PartyId, Role, SecretKeys, Suite, hex_string};
use mpay_money::{Amount, Currency};
use mpay_network::client::{EnrolCustomer, EnrolMerchant, Notice, PaymentStatus};
use mpay_network::config::write_keys;
use mpay_network::provision::issue_certificate;
use mpay_network::{
    BankEntry, CppClient, DcClient, Directory, MppClient, Running, ServiceConfig, ServiceEntry,
    ServiceRole, Timing, wall_clock,
};
use mpay_semops::{
    Authority, CustomerRef, Decision, DecisionRelay, MerchantDecision, PaymentRequest, Pin,
    REQUEST_LIFETIME_DEFAULT_MS, RefundRequest, SealedShipping, ShippingDetails, Signed,
    SignedMerchantDecision, SignedRefundRequest, SignedTrans, Trans, Validity, kind, seal_payload,
    seal_pr,
};
use mpay_sql::testing::{self, TestDb};
use mpay_sql::{Backend, Db, outbox};
use mpay_wire::Encode;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub const OPERATOR_TOKEN: &str = "operator-token-00000000001";
pub const BANK_OPERATOR_TOKEN: &str = "bank-operator-token-000001";
pub const CPP_BANK_TOKEN: &str = "cpp1-bank-token-0000000001";
pub const MPP1_BANK_TOKEN: &str = "mpp1-bank-token-0000000001";
pub const MPP2_BANK_TOKEN: &str = "mpp2-bank-token-0000000001";
pub const PIN: &str = "1234";
/// Alice's deposit at bank1, cents.
pub const ALICE_DEPOSIT: i64 = 100_00;
/// The CPP's float at bank1, cents (refunds never need it, but it is
/// there as a bank customer's money would be).
pub const CPP_DEPOSIT: i64 = 0;
/// Longest a test waits for something that happens in the background.
pub const WAIT_MS_MAX: u64 = 20_000;

pub fn eur(cents: i64) -> Amount {
    Amount::new(cents, Currency::EUR)
}

fn account(text: &str) -> AccountId {
    AccountId::parse(text).expect("account id")
}

/// The service names.
pub const SERVICES: [&str; 5] = ["cpp1", "dc-eu", "mpp1", "dc-us", "mpp2"];

pub struct Merchant {
    pub keys: SecretKeys,
    pub id: PartyId,
    pub mpp: PartyId,
    pub token: String,
    pub client: MppClient,
}

/// How the network's processes talk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TLS everywhere, under the network's own CA (what `mpay network
    /// init` provisions).
    Tls,
    /// Plaintext HTTP on loopback, tokens explicitly allowed there.
    Plaintext,
}

pub struct Network {
    /// Holds the directory, keys and configs.
    _dir: tempfile::TempDir,
    pub transport: Transport,
    /// A client trusting the network's CA only.
    pub http: reqwest::Client,
    pub directory: Directory,
    pub banks: Vec<Arc<Bank>>,
    bank_tasks: Vec<JoinHandle<()>>,
    _bank_background: Vec<mpay_bank::Background>,
    pub services: BTreeMap<String, Option<Running>>,
    pub configs: BTreeMap<String, ServiceConfig>,
    dbs: BTreeMap<String, Db>,
    test_dbs: Vec<TestDb>,
    pub addrs: BTreeMap<String, std::net::SocketAddr>,
    pub keys: BTreeMap<String, SecretKeys>,
    pub cpp_id: PartyId,
    pub cpp_keys: mpay_identity::PublicKeys,
    pub cpp: CppClient,
    pub device_keys: SecretKeys,
    pub device: PartyId,
    pub bob: Merchant,
    pub carol: Merchant,
    rng: ChaCha20Rng,
    /// Σ deposited into holder accounts (conservation expects it).
    deposited: i64,
}

async fn fresh_db(first: &Db) -> TestDb {
    match first.backend() {
        Backend::Sqlite => testing::sqlite().await.expect("sqlite"),
        Backend::Postgres => testing::postgres().await.expect("postgres"),
    }
}

/// Test timings: short, so expiry and retries happen within a test.
pub fn timing(decision_timeout_ms: u64) -> Timing {
    Timing {
        delivery_interval_ms: 200,
        hop_budget_ms: 300,
        decision_timeout_ms,
        expiry_interval_ms: 100,
        recovery_interval_ms: 200,
        hold_grace_ms: 60_000,
        http_timeout_ms: 3_000,
        long_poll_max_ms: 10_000,
        certificate_validity_ms: 24 * 3600 * 1000,
    }
}

impl Network {
    /// Builds and starts the network; `db` (from `for_each_backend`) is the
    /// CPP's, the others are fresh databases of the same backend.
    pub async fn start(db: Db, decision_timeout_ms: u64) -> Network {
        Self::start_with_micro(
            db,
            decision_timeout_ms,
            mpay_network::MicroConfig::default(),
        )
        .await
    }

    /// [`Network::start`] with `micro` as the CPP's and the MPPs' `[micro]`.
    pub async fn start_with_micro(
        db: Db,
        decision_timeout_ms: u64,
        micro: mpay_network::MicroConfig,
    ) -> Network {
        Self::start_with(db, decision_timeout_ms, micro, Transport::Tls).await
    }

    /// [`Network::start`] on `transport`.
    pub async fn start_with(
        db: Db,
        decision_timeout_ms: u64,
        micro: mpay_network::MicroConfig,
        transport: Transport,
    ) -> Network {
        mpay_tls::install_ring_provider();
        let now = wall_clock();
        let mut rng = ChaCha20Rng::seed_from_u64(now.as_millis());
        let dir = tempfile::tempdir().expect("tempdir");
        // TLS: one CA, one certificate for the loopback names, shared by
        // every process (each is its own in a provisioned network).
        let (ca, server_tls, tls_files) = match transport {
            Transport::Tls => {
                let ca = mpay_tls::Ca::generate("mpay test CA", 86_400).expect("CA");
                let issued = ca
                    .issue(&["127.0.0.1", "localhost"], 86_400)
                    .expect("certificate");
                let ca_path = dir.path().join("ca.pem");
                let cert_path = dir.path().join("server.pem");
                let key_path = dir.path().join("server.key");
                std::fs::write(&ca_path, ca.cert_pem()).expect("ca.pem");
                std::fs::write(&cert_path, &issued.cert_pem).expect("server.pem");
                std::fs::write(&key_path, &issued.key_pem).expect("server.key");
                let server = mpay_tls::server_config(&cert_path, &key_path).expect("server TLS");
                (
                    Some(ca_path),
                    Some(server),
                    Some((
                        cert_path.display().to_string(),
                        key_path.display().to_string(),
                    )),
                )
            }
            Transport::Plaintext => (None, None, None),
        };
        let scheme = if ca.is_some() { "https" } else { "http" };
        let http = mpay_tls::http_client(ca.as_deref(), Duration::from_secs(30)).expect("client");
        let root_keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
        let root = PartyId::random(&mut rng);
        let root_cert =
            issue_certificate(&root_keys, root, root, Role::SchemeRoot, &root_keys, now);

        // Banks.
        let mut bank_ids = Vec::new();
        for _ in 0..2 {
            let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
            let id = PartyId::random(&mut rng);
            let cert = issue_bank_certificate(&root_keys, root, id, keys.public(), now, 86_400_000);
            bank_ids.push(BankIdentity::new(keys, cert).expect("bank identity"));
        }
        let mut bank_listeners = Vec::new();
        for _ in 0..2 {
            bank_listeners.push(TcpListener::bind("127.0.0.1:0").await.expect("bind"));
        }
        let bank_urls: Vec<String> = bank_listeners
            .iter()
            .map(|l| format!("{scheme}://{}", l.local_addr().expect("addr")))
            .collect();
        let mut test_dbs = Vec::new();
        let mut banks = Vec::new();
        let mut bank_tasks = Vec::new();
        let mut bank_background = Vec::new();
        let pattern = |p: &str| AccountPattern::parse(p).expect("pattern");
        for (i, listener) in bank_listeners.into_iter().enumerate() {
            let other = 1 - i;
            let mut config = BankConfig::new(Currency::EUR, vec![root_cert.clone()]);
            config.peers = vec![
                PeerBank::new(
                    bank_ids[other].id(),
                    &bank_urls[other],
                    bank_ids[other].certificate().clone(),
                )
                .expect("peer"),
            ];
            config.delivery_interval_ms = 50;
            config.tls_ca = ca.clone();
            config.tokens = vec![
                ApiToken::new(BANK_OPERATOR_TOKEN, Caller::operator("ops").expect("op"))
                    .expect("token"),
                ApiToken::new(
                    CPP_BANK_TOKEN,
                    Caller::new("cpp1", vec![pattern("cpp:cpp1")]).expect("caller"),
                )
                .expect("token"),
                ApiToken::new(
                    MPP1_BANK_TOKEN,
                    Caller::new("mpp1", vec![pattern("mpp:mpp1")]).expect("caller"),
                )
                .expect("token"),
                ApiToken::new(
                    MPP2_BANK_TOKEN,
                    Caller::new("mpp2", vec![pattern("mpp:mpp2")]).expect("caller"),
                )
                .expect("token"),
            ];
            let bank_db = fresh_db(&db).await;
            let identity = BankIdentity::new(
                SecretKeys::from_secret_bytes(&bank_ids[i].keys().to_secret_bytes()).expect("keys"),
                bank_ids[i].certificate().clone(),
            )
            .expect("identity");
            let bank = Arc::new(
                Bank::open(
                    bank_db.db().clone(),
                    config,
                    Some(identity),
                    [i as u8 + 1; 32],
                    now,
                )
                .await
                .expect("bank opens"),
            );
            test_dbs.push(bank_db);
            let served = Arc::clone(&bank);
            let tls = server_tls.clone();
            bank_tasks.push(tokio::spawn(async move {
                let _ = mpay_bank::service::serve_tls(served, listener, tls).await;
            }));
            bank_background
                .push(mpay_bank::spawn_background(Arc::clone(&bank)).expect("interbank client"));
            banks.push(bank);
        }
        let operator = Caller::operator("ops").expect("op");
        let open = |bank: &Arc<Bank>, name: &'static str| {
            let bank = Arc::clone(bank);
            let operator = operator.clone();
            async move {
                bank.open_account(
                    &operator,
                    &format!("open-{name}"),
                    &OpenAccount {
                        account: account(name),
                        holder: name.into(),
                        floor: eur(0),
                    },
                    now,
                )
                .await
                .expect("account opens");
            }
        };
        open(&banks[0], "cust:alice").await;
        open(&banks[0], "cpp:cpp1").await;
        open(&banks[1], "shop:bob").await;
        open(&banks[1], "shop:carol").await;
        open(&banks[1], "mpp:mpp1").await;
        open(&banks[1], "mpp:mpp2").await;
        // The mandates the customer and the merchants give their
        // processors at enrolment (the processors' tokens reach nothing
        // else): the CPP holds, debits and reads alice's account; each MPP
        // debits (refunds) and reads its merchant's.
        for (bank, name, processor, operations) in [
            (&banks[0], "cust:alice", "cpp1", &Operation::ALL[..]),
            (
                &banks[1],
                "shop:bob",
                "mpp1",
                &[Operation::Debit, Operation::Read][..],
            ),
            (
                &banks[1],
                "shop:carol",
                "mpp2",
                &[Operation::Debit, Operation::Read][..],
            ),
        ] {
            bank.grant_mandate(
                &operator,
                &Mandate {
                    account: account(name),
                    processor: processor.to_owned(),
                    operations: operations.to_vec(),
                    cap: eur(1_000_000),
                    revoked: false,
                },
                now,
            )
            .await
            .expect("mandate granted");
        }
        banks[0]
            .deposit(
                &operator,
                "deposit-alice",
                &Deposit {
                    account: account("cust:alice"),
                    amount: eur(ALICE_DEPOSIT),
                    reference: "cash".into(),
                },
                now,
            )
            .await
            .expect("deposit");

        // Services.
        let roles = [
            ("cpp1", ServiceRole::Cpp, "eu", Role::Cpp),
            ("dc-eu", ServiceRole::Dc, "eu", Role::DataCenter),
            ("mpp1", ServiceRole::Mpp, "eu", Role::Mpp),
            ("dc-us", ServiceRole::Dc, "us", Role::DataCenter),
            ("mpp2", ServiceRole::Mpp, "us", Role::Mpp),
        ];
        let mut listeners = BTreeMap::new();
        let mut addrs = BTreeMap::new();
        let mut entries = Vec::new();
        let mut keys_by_name = BTreeMap::new();
        for (name, role, region, cert_role) in roles {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            addrs.insert(name.to_owned(), addr);
            listeners.insert(name.to_owned(), listener);
            let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut rng);
            let id = PartyId::random(&mut rng);
            let cert = issue_certificate(&root_keys, root, id, cert_role, &keys, now);
            let (bank, acct) = match name {
                "cpp1" => (Some("bank1".to_owned()), Some("cpp:cpp1".to_owned())),
                "mpp1" => (Some("bank2".to_owned()), Some("mpp:mpp1".to_owned())),
                "mpp2" => (Some("bank2".to_owned()), Some("mpp:mpp2".to_owned())),
                _ => (None, None),
            };
            entries.push(ServiceEntry {
                name: name.into(),
                id: id.to_hex(),
                role,
                region: region.into(),
                url: format!("{scheme}://{addr}"),
                certificate: hex_string(&cert.to_wire()),
                bank,
                account: acct,
            });
            keys_by_name.insert(name.to_owned(), keys);
        }
        let directory = Directory {
            currency: "EUR".into(),
            scheme_root: hex_string(&root_cert.to_wire()),
            banks: bank_ids
                .iter()
                .enumerate()
                .map(|(i, b)| BankEntry {
                    name: format!("bank{}", i + 1),
                    id: b.id().to_hex(),
                    url: bank_urls[i].clone(),
                    certificate: hex_string(&b.certificate().to_wire()),
                })
                .collect(),
            services: entries,
            tls_ca: ca.as_ref().map(|p| p.display().to_string()),
        };
        let directory_path = dir.path().join("directory.toml");
        directory.save(&directory_path).expect("directory");
        let mut configs = BTreeMap::new();
        let mut dbs = BTreeMap::new();
        for name in SERVICES {
            let keys_path: PathBuf = dir.path().join(format!("{name}.keys"));
            write_keys(&keys_path, &keys_by_name[name]).expect("keys");
            let mut bank_tokens = BTreeMap::new();
            match name {
                "cpp1" => {
                    bank_tokens.insert("bank1".to_owned(), CPP_BANK_TOKEN.to_owned());
                    bank_tokens.insert("bank2".to_owned(), CPP_BANK_TOKEN.to_owned());
                }
                "mpp1" => {
                    bank_tokens.insert("bank2".to_owned(), MPP1_BANK_TOKEN.to_owned());
                }
                "mpp2" => {
                    bank_tokens.insert("bank2".to_owned(), MPP2_BANK_TOKEN.to_owned());
                }
                _ => {}
            }
            let pin_keys = name.starts_with("cpp").then(|| {
                let path = dir.path().join(format!("{name}.pin-keys"));
                let key = mpay_semops::PinKey::new(*blake3::hash(name.as_bytes()).as_bytes());
                let keys = mpay_semops::PinKeys::new(vec![key]).expect("one key");
                mpay_network::config::write_pin_keys(&path, &keys).expect("PIN keys");
                path.display().to_string()
            });
            let config = ServiceConfig {
                name: name.into(),
                listen: addrs[name].to_string(),
                db: "given by the test".into(),
                keys: keys_path.display().to_string(),
                directory: directory_path.display().to_string(),
                operator_token: OPERATOR_TOKEN.into(),
                bank_tokens,
                timing: timing(decision_timeout_ms),
                pin_failures_max: Some(3),
                pin_keys,
                pin_cost: None,
                micro: if name.starts_with("dc") {
                    mpay_network::MicroConfig::default()
                } else {
                    micro.clone()
                },
                tls_cert: tls_files.as_ref().map(|(cert, _)| cert.clone()),
                tls_key: tls_files.as_ref().map(|(_, key)| key.clone()),
                allow_plaintext_loopback: transport == Transport::Plaintext,
            };
            let service_db = if name == "cpp1" {
                db.clone()
            } else {
                let fresh = fresh_db(&db).await;
                let handle = fresh.db().clone();
                test_dbs.push(fresh);
                handle
            };
            configs.insert(name.to_owned(), config);
            dbs.insert(name.to_owned(), service_db);
        }
        let mut network = Network {
            _dir: dir,
            transport,
            http: http.clone(),
            directory,
            banks,
            bank_tasks,
            _bank_background: bank_background,
            services: BTreeMap::new(),
            configs,
            dbs,
            test_dbs,
            addrs: addrs.clone(),
            cpp_id: PartyId::default(),
            cpp_keys: keys_by_name["cpp1"].public(),
            cpp: CppClient::with_http(&format!("{scheme}://{}", addrs["cpp1"]), http.clone())
                .with_plaintext(plaintext(transport)),
            device_keys: SecretKeys::generate(Suite::Ed25519X25519, &mut rng),
            device: PartyId::default(),
            bob: placeholder_merchant(&mut rng),
            carol: placeholder_merchant(&mut rng),
            keys: keys_by_name,
            rng,
            deposited: ALICE_DEPOSIT + CPP_DEPOSIT,
        };
        for (name, listener) in listeners {
            network.start_service(&name, Some(listener)).await;
        }
        network.cpp_id =
            PartyId::from_hex(&network.directory.service("cpp1").expect("cpp").id).expect("id");
        // Enrolment.
        let device_cert = network
            .cpp
            .enroll_customer(
                OPERATOR_TOKEN,
                &EnrolCustomer::new(
                    "alice",
                    "bank1",
                    "cust:alice",
                    PIN,
                    &network.device_keys.public(),
                ),
            )
            .await
            .expect("alice enrols");
        network.device = device_cert.subject();
        network.bob = network.merchant("mpp1", "bob", "shop:bob").await;
        network.carol = network.merchant("mpp2", "carol", "shop:carol").await;
        network
    }

    async fn merchant(&mut self, mpp: &str, name: &str, account: &str) -> Merchant {
        let keys = SecretKeys::generate(Suite::Ed25519X25519, &mut self.rng);
        let client = MppClient::with_http(&self.url(mpp), self.http.clone())
            .with_plaintext(plaintext(self.transport));
        let (cert, token) = client
            .enroll_merchant(
                OPERATOR_TOKEN,
                &EnrolMerchant::new(name, "bank2", account, &keys.public()),
            )
            .await
            .expect("merchant enrols");
        Merchant {
            id: cert.subject(),
            mpp: cert.body.issuer,
            keys,
            token,
            client,
        }
    }

    /// Starts (or restarts) service `name`, on its address.
    pub async fn start_service(&mut self, name: &str, listener: Option<TcpListener>) {
        let listener = match listener {
            Some(l) => l,
            None => {
                let mut bound = None;
                for _ in 0..50 {
                    match TcpListener::bind(self.addrs[name]).await {
                        Ok(l) => {
                            bound = Some(l);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                bound.expect("rebind the service's port")
            }
        };
        let config = self.configs[name].clone();
        let db = self.dbs[name].clone();
        let running = match self.directory.service(name).expect("service").role {
            ServiceRole::Cpp => mpay_network::cpp::start(config, db, listener).await,
            ServiceRole::Dc => mpay_network::dc::start(config, db, listener).await,
            ServiceRole::Mpp => mpay_network::mpp::start(config, db, listener).await,
        }
        .expect("service starts");
        self.services.insert(name.to_owned(), Some(running));
    }

    /// Stops service `name` (its server and loops); its database stays.
    pub async fn stop_service(&mut self, name: &str) {
        if let Some(Some(running)) = self.services.remove(name) {
            running.stop().await;
        }
        self.services.insert(name.to_owned(), None);
    }

    pub fn db(&self, name: &str) -> &Db {
        &self.dbs[name]
    }

    pub fn dc(&self, name: &str) -> DcClient {
        DcClient::with_http(&self.url(name), self.http.clone())
            .with_plaintext(plaintext(self.transport))
    }

    /// Service `name`'s base URL.
    pub fn url(&self, name: &str) -> String {
        let scheme = match self.transport {
            Transport::Tls => "https",
            Transport::Plaintext => "http",
        };
        format!("{scheme}://{}", self.addrs[name])
    }

    /// A TRANS of `which` for `cents`, signed by the merchant.
    pub fn trans(&mut self, which: Which, cents: i64, reference: &str) -> SignedTrans {
        let mut nonce = [0u8; 16];
        rand_core::Rng::fill_bytes(&mut self.rng, &mut nonce);
        let merchant = self.merchant_ref(which);
        Signed::sign(
            Trans {
                merchant: merchant.id,
                mpp: merchant.mpp,
                amount: eur(cents),
                merchant_reference: reference.into(),
                expires_at: wall_clock().saturating_add_ms(10 * 60 * 1000),
                description: "test purchase".into(),
                nonce,
            },
            &merchant.keys,
        )
        .expect("TRANS signs")
    }

    /// Alice's PR for `trans`, sealed to the CPP (a fresh frame each call).
    pub fn pr_frame(&mut self, trans: &SignedTrans, pin: &str, key: [u8; 16]) -> Vec<u8> {
        self.pr_frame_sharing(trans, pin, key, None)
    }

    /// [`Network::pr_frame`] carrying `shipping` (sealed shipping details).
    pub fn pr_frame_sharing(
        &mut self,
        trans: &SignedTrans,
        pin: &str,
        key: [u8; 16],
        shipping: Option<SealedShipping>,
    ) -> Vec<u8> {
        let pr = PaymentRequest {
            trans: trans.clone(),
            customer: CustomerRef::new("alice").expect("ref"),
            cpp: self.cpp_id,
            pin: Pin::new(pin).expect("pin"),
            idempotency_key: key,
            shipping,
        };
        seal_pr(
            &pr,
            &self.device_keys,
            self.device,
            &self.cpp_keys,
            wall_clock(),
            &mut self.rng,
        )
        .expect("PR seals")
    }

    /// Submits a payment of `cents` to `to` with the right PIN.
    /// Pays `cents` to `to`, and returns the payment once it is past
    /// `received`. The CPP answers a PR after one attempt at the bank; a
    /// bank slow to answer (a loaded machine) leaves it `received` and the
    /// sweep resumes it, so a test that asserts the state after the bank
    /// step waits for that step here, as a customer's device would.
    pub async fn pay(&mut self, to: Which, cents: i64, key: [u8; 16]) -> PaymentStatus {
        let trans = self.trans(to, cents, "order-1");
        let frame = self.pr_frame(&trans, PIN, key);
        let status = self.cpp.submit(frame).await.expect("PR accepted");
        self.past_received(status).await
    }

    /// Alice's shipping details `text` sealed to the merchant of `trans`,
    /// as her device does: the merchant's certificate from the MPP the
    /// TRANS names, checked against the directory's trust and the TRANS.
    pub async fn seal_shipping(
        &mut self,
        which: Which,
        trans: &SignedTrans,
        text: &str,
    ) -> SealedShipping {
        let merchant = self.merchant_ref(which);
        let cert = merchant
            .client
            .merchant_certificate(trans.unverified_body().merchant)
            .await
            .expect("the merchant's certificate");
        let now = wall_clock();
        assert_eq!(cert.body.issuer, merchant.mpp, "issued by the TRANS's MPP");
        self.directory
            .resolve(now)
            .expect("directory")
            .trust_store()
            .check_role(&cert, Role::Merchant, now)
            .expect("a trusted merchant certificate");
        trans
            .verify(&cert, now)
            .expect("the TRANS is the merchant's");
        let details = ShippingDetails::new(text).expect("shipping details");
        mpay_semops::seal_shipping(&details, trans, &cert, &mut self.rng).expect("seals")
    }

    /// `status` once its payment has left `received`.
    pub async fn past_received(&self, mut status: PaymentStatus) -> PaymentStatus {
        let until = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        while status.state == "received" {
            assert!(
                tokio::time::Instant::now() < until,
                "payment {} still received after {WAIT_MS_MAX} ms",
                status.payment_id
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
            status = self
                .cpp
                .status(&status.payment_id, 0)
                .await
                .expect("payment status");
        }
        status
    }

    pub fn merchant_ref(&self, which: Which) -> &Merchant {
        match which {
            Which::Bob => &self.bob,
            Which::Carol => &self.carol,
        }
    }

    /// Waits for the merchant's notice of `payment_id`.
    pub async fn notice(&self, which: Which, payment_id: &str) -> Notice {
        let merchant = self.merchant_ref(which);
        let until = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let notices = merchant
                .client
                .notices(&merchant.token, 2_000)
                .await
                .expect("notices");
            if let Some(n) = notices.into_iter().find(|n| n.payment_id == payment_id) {
                return n;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "no notice of {payment_id} for the merchant"
            );
        }
    }

    /// The merchant's signed decision.
    pub fn decision(
        &self,
        which: Which,
        payment_id: &str,
        approve: bool,
    ) -> SignedMerchantDecision {
        let merchant = self.merchant_ref(which);
        let id = hex_id(payment_id);
        Signed::sign(
            MerchantDecision {
                payment_id: id,
                merchant: merchant.id,
                decision: if approve {
                    Decision::Approve
                } else {
                    Decision::Reject {
                        reason: "out of stock".into(),
                    }
                },
                validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &merchant.keys,
        )
        .expect("decision signs")
    }

    /// The merchant's signed decision on `payment_id`, sent to its MPP.
    pub async fn decide(&self, which: Which, payment_id: &str, approve: bool) {
        let decision = self.decision(which, payment_id, approve);
        let merchant = self.merchant_ref(which);
        merchant
            .client
            .decide(&merchant.token, &decision)
            .await
            .expect("decides");
    }

    /// The merchant's signed refund request.
    pub fn refund(
        &self,
        which: Which,
        payment_id: &str,
        cents: i64,
        key: u8,
    ) -> SignedRefundRequest {
        let merchant = self.merchant_ref(which);
        Signed::sign(
            RefundRequest {
                payment_id: hex_id(payment_id),
                merchant: merchant.id,
                amount: eur(cents),
                idempotency_key: [key; 16],
                validity: Validity::starting(wall_clock(), REQUEST_LIFETIME_DEFAULT_MS),
            },
            &merchant.keys,
        )
        .expect("refund signs")
    }

    /// The merchant's MPP's name.
    /// A fresh frame carrying `decision` relayed by the merchant's MPP (with
    /// the payout account it would attach), sent by dc-eu to the CPP: what
    /// dc-eu's outbox delivers.
    pub fn decision_frame(&mut self, which: Which, decision: &SignedMerchantDecision) -> Vec<u8> {
        self.authority_frame(which, Authority::Decision(decision.clone()))
    }

    /// A fresh frame carrying `authority` relayed by the merchant's MPP, as
    /// [`Network::decision_frame`].
    pub fn authority_frame(&mut self, which: Which, authority: Authority) -> Vec<u8> {
        let payment_id = authority.payment_id();
        let relay = self.decision_relay(which, authority);
        self.seal_from_dc_to_cpp(kind::DECISION_RELAY, &relay, payment_id)
    }

    /// `payload` of `kind` as dc-eu seals it to the CPP.
    pub fn seal_from_dc_to_cpp<T: Encode>(
        &mut self,
        message_kind: mpay_envelope::MessageKind,
        payload: &T,
        tx_id: [u8; 16],
    ) -> Vec<u8> {
        let dc = PartyId::from_hex(&self.directory.service("dc-eu").expect("dc").id).expect("id");
        seal_payload(
            message_kind,
            payload,
            &self.keys["dc-eu"],
            dc,
            self.cpp_id,
            &self.cpp_keys,
            tx_id,
            wall_clock(),
            &mut self.rng,
        )
        .expect("seals")
    }

    /// The relay of `authority` as the merchant's MPP signs it.
    pub fn decision_relay(&self, which: Which, authority: Authority) -> Signed<DecisionRelay> {
        let (mpp, account) = match which {
            Which::Bob => ("mpp1", "shop:bob"),
            Which::Carol => ("mpp2", "shop:carol"),
        };
        let mpp_id = self.merchant_ref(which).mpp;
        let bank2 = PartyId::from_hex(&self.directory.banks[1].id).expect("bank id");
        Signed::sign(
            DecisionRelay {
                authority,
                mpp: mpp_id,
                payout_bank: bank2,
                payout_account: account.into(),
            },
            &self.keys[mpp],
        )
        .expect("relay signs")
    }

    /// The value of the counter `name` (`…_outbox_batches_total`) in
    /// service `service`'s metrics.
    pub async fn counter(&self, service: &str, name: &str) -> u64 {
        let text = self
            .http
            .get(format!("{}/metrics", self.url(service)))
            .send()
            .await
            .expect("metrics answer")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                key.ends_with(name).then(|| value.parse().ok())?
            })
            .unwrap_or_else(|| panic!("no {name} in the metrics of {service}:\n{text}"))
    }

    /// The same, but sealed by a party that is not in the directory.
    pub fn forged_decision_frame(&mut self, decision: &SignedMerchantDecision) -> Vec<u8> {
        let stranger = SecretKeys::generate(Suite::Ed25519X25519, &mut self.rng);
        let id = PartyId::random(&mut self.rng);
        seal_payload(
            kind::MERCHANT_DECISION,
            decision,
            &stranger,
            id,
            self.cpp_id,
            &self.cpp_keys,
            decision.unverified_body().payment_id,
            wall_clock(),
            &mut self.rng,
        )
        .expect("seals")
    }

    /// Posts `decision` to the CPP's inbox as dc-eu would.
    pub async fn relay_decision_to_cpp(
        &mut self,
        which: Which,
        decision: &SignedMerchantDecision,
    ) -> mpay_network::client::InboxAnswer {
        let frame = self.decision_frame(which, decision);
        self.cpp.post_inbox(frame).await.expect("inbox answers")
    }

    /// Decisions the CPP recorded as late.
    pub async fn late_decisions(&self) -> i64 {
        use mpay_sql::sqlx::Row;
        mpay_sql::sqlx::query("SELECT COUNT(*) AS n FROM cpp_late_decisions")
            .fetch_one(self.dbs["cpp1"].pool())
            .await
            .expect("count")
            .try_get("n")
            .expect("n")
    }

    /// Waits until the CPP's payment is final and returns its status.
    pub async fn final_status(&self, payment_id: &str) -> PaymentStatus {
        let until = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let status = self.cpp.status(payment_id, 5_000).await.expect("status");
            if status.is_final {
                return status;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "payment {payment_id} not final: {status:?}"
            );
        }
    }

    /// The merchant's view of a payment once it has settled: its outcome
    /// confirmed and no refund still moving. The MPP's long poll ends after
    /// at most its own bound, which a refund crossing banks on a loaded
    /// machine can outlast, so this asks again until [`WAIT_MS_MAX`].
    pub async fn settled_merchant_view(
        &self,
        which: Which,
        payment_id: &str,
    ) -> mpay_network::client::MerchantPaymentView {
        let merchant = self.merchant_ref(which);
        let until = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        loop {
            let view = merchant
                .client
                .payment(&merchant.token, payment_id, 5_000)
                .await
                .expect("merchant view");
            let moving = view.refunds.iter().any(|r| {
                mpay_processor::refund::State::parse(&r.state).is_some_and(|s| s.is_in_flight())
            });
            if view.confirmation.is_some() && !moving {
                return view;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "payment {payment_id} not settled at the merchant: {view:?}"
            );
        }
    }

    /// Waits until `check` holds (polling).
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let until = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS_MAX);
        while !check().await {
            assert!(
                tokio::time::Instant::now() < until,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Balance of `account` at bank `i` (0 or 1), cents.
    pub async fn balance(&self, bank: usize, account_id: &str) -> i64 {
        self.banks[bank]
            .balances()
            .await
            .expect("balances")
            .get(&account(account_id))
            .map_or(0, |a| a.minor_units())
    }

    /// Waits for every outbox (banks' and services') to drain, then checks
    /// conservation: every bank's books balance, no hold is pending, and the
    /// holder accounts of both banks together hold exactly what was
    /// deposited.
    pub async fn check_conservation(&self) {
        let mut dbs: Vec<(String, Db)> = self
            .banks
            .iter()
            .enumerate()
            .map(|(i, b)| (format!("bank{}", i + 1), b.db().clone()))
            .collect();
        for (name, db) in &self.dbs {
            if matches!(self.services.get(name), Some(Some(_))) {
                dbs.push((name.clone(), db.clone()));
            }
        }
        for (name, db) in &dbs {
            self.eventually(&format!("{name}'s outbox to drain"), || async {
                outbox::pending_count(db).await.expect("outbox") == 0
            })
            .await;
        }
        self.check_books().await;
    }

    /// Conservation at the banks alone, without waiting for the services'
    /// outboxes (for a test that injects messages a service will refuse
    /// for ever): every bank's books balance, no hold is pending, and the
    /// holder accounts hold exactly what was deposited.
    pub async fn check_books(&self) {
        for bank in &self.banks {
            let db = bank.db().clone();
            self.eventually("a bank's outbox to drain", || async {
                outbox::pending_count(&db).await.expect("outbox") == 0
            })
            .await;
        }
        let mut holders = 0i64;
        for bank in &self.banks {
            bank.check_books().await.expect("books balance");
            assert_eq!(
                bank.pending_holds().await.expect("holds"),
                0,
                "a hold is still pending"
            );
            for (id, amount) in bank.balances().await.expect("balances") {
                let text = id.as_str();
                if !(text == "external" || text.starts_with("settlement:") || text == "suspense") {
                    holders += amount.minor_units();
                }
            }
        }
        assert_eq!(holders, self.deposited, "money was made or lost");
    }

    /// An operator's deposit of `cents` into `account_id` at bank `bank`
    /// (0 or 1), counted in what conservation expects.
    pub async fn deposit(&mut self, bank: usize, account_id: &str, cents: i64) {
        self.banks[bank]
            .deposit(
                &Caller::operator("ops").expect("op"),
                &format!("deposit-{account_id}-{}", self.deposited),
                &Deposit {
                    account: account(account_id),
                    amount: eur(cents),
                    reference: "cash".into(),
                },
                wall_clock(),
            )
            .await
            .expect("deposit");
        self.deposited += cents;
    }

    /// Stops everything and removes the extra databases.
    pub async fn shutdown(mut self) {
        let names: Vec<String> = self.services.keys().cloned().collect();
        for name in names {
            self.stop_service(&name).await;
        }
        for task in &self.bank_tasks {
            task.abort();
        }
        self._bank_background.clear();
        for bank in &self.banks {
            bank.db().close().await;
        }
        for db in std::mem::take(&mut self.test_dbs) {
            db.cleanup().await;
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Which {
    /// At mpp1, region eu (the CPP's).
    Bob,
    /// At mpp2, region us.
    Carol,
}

fn placeholder_merchant(rng: &mut ChaCha20Rng) -> Merchant {
    Merchant {
        keys: SecretKeys::generate(Suite::Ed25519X25519, rng),
        id: PartyId::default(),
        mpp: PartyId::default(),
        token: String::new(),
        // Never used to reach anything: trusts no server, and does not read
        // the process's CA (the first network's, gone with its directory).
        client: MppClient::with_http(
            "http://127.0.0.1:1",
            mpay_tls::http_client(None, Duration::from_secs(1)).expect("client"),
        ),
    }
}

/// What clients of a network on `transport` may do with tokens.
pub fn plaintext(transport: Transport) -> mpay_tls::Plaintext {
    match transport {
        Transport::Tls => mpay_tls::Plaintext::Refuse,
        Transport::Plaintext => mpay_tls::Plaintext::AllowLoopback,
    }
}

pub fn hex_id(text: &str) -> [u8; 16] {
    mpay_identity::hex_bytes(text)
        .and_then(|b| b.try_into().ok())
        .expect("32 hex digits")
}
