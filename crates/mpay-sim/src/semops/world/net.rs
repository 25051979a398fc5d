//! The simulated banks' side of the wire and the services' background
//! work: ticks, the outbox and its frames, acknowledgements, and the DCs'
//! forwarding.

use super::*;

impl World {
    // ---- banks ------------------------------------------------------------

    pub(super) fn bank_receive(&mut self, b: u8, from: Node, msg: Msg) {
        let down = self.bank_down[usize::from(b)]
            .iter()
            .any(|w| w.contains(self.now));
        if down {
            self.report.counts.dropped += 1;
            return;
        }
        let now = self.now;
        match msg {
            Msg::BankReq { call, key, op } => {
                let bank = &mut self.banks[usize::from(b)];
                let forget = self.variant == Variant::RefusalForgotten;
                let result = bank.apply(&key, &op, now, &mut self.next_id, forget);
                self.send(Node::Bank(b), from, Msg::BankReply { call, key, result });
            }
            Msg::Interbank(credit) => {
                self.banks[usize::from(b)].receive(&credit, false);
                self.send(Node::Bank(b), from, Msg::InterbankAck { id: credit.id });
            }
            Msg::InterbankAck { id } => {
                self.banks[usize::from(b)].outbox.remove(&id);
            }
            _ => {}
        }
    }

    // ---- the services' background work --------------------------------------

    pub(super) fn tick(&mut self, node: Node) {
        match node {
            Node::Bank(b) => {
                let now = self.now;
                self.banks[usize::from(b)].expire_due(now);
                let credits: Vec<Interbank> = self.banks[usize::from(b)]
                    .outbox
                    .values()
                    .cloned()
                    .collect();
                for credit in credits {
                    let to = Node::Bank(credit.to);
                    self.send(node, to, Msg::Interbank(credit));
                }
            }
            Node::Cpp(r) => self.cpp_tick(r),
            Node::Mpp(r) => self.mpp_tick(r),
            Node::Dc(_) | Node::Customer => {}
        }
        self.resend_frames(node);
    }

    pub(super) fn outbox(&mut self, node: Node) -> Option<&mut Outbox> {
        match node {
            Node::Cpp(r) => Some(&mut self.cpps[usize::from(r)].outbox),
            Node::Mpp(r) => Some(&mut self.mpps[usize::from(r)].outbox),
            Node::Dc(r) => Some(&mut self.dcs[usize::from(r)].outbox),
            Node::Bank(_) | Node::Customer => None,
        }
    }

    pub(super) fn resend_frames(&mut self, node: Node) {
        let frames: Vec<(u64, Node, Node, Body)> = self
            .outbox(node)
            .map(|o| {
                o.iter()
                    .map(|(id, (hop, target, body))| (*id, *hop, *target, body.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let now = self.now;
        for (id, hop, target, body) in frames {
            let last = self.volatile(node).frames_sent.get(&id).copied();
            if last.is_some_and(|t| now < t + RETRY_MS) {
                continue;
            }
            self.volatile(node).frames_sent.insert(id, now);
            self.send(node, hop, Msg::Frame { id, target, body });
        }
    }

    /// Queues `body` for `target` through `from`'s region DC (or straight to
    /// it from a DC), and sends it now.
    pub(super) fn queue_frame(&mut self, from: Node, hop: Node, target: Node, body: Body) {
        let id = self.id();
        if let Some(outbox) = self.outbox(from) {
            outbox.insert(id, (hop, target, body.clone()));
        }
        let now = self.now;
        self.volatile(from).frames_sent.insert(id, now);
        self.send(from, hop, Msg::Frame { id, target, body });
    }

    pub(super) fn frame_acked(&mut self, node: Node, id: u64) {
        if let Some(outbox) = self.outbox(node) {
            outbox.remove(&id);
        }
        self.volatile(node).frames_sent.remove(&id);
    }

    pub(super) fn frame(&mut self, node: Node, from: Node, id: u64, target: Node, body: Body) {
        let seen = match node {
            Node::Cpp(r) => &mut self.cpps[usize::from(r)].seen,
            Node::Mpp(r) => &mut self.mpps[usize::from(r)].seen,
            Node::Dc(r) => &mut self.dcs[usize::from(r)].seen,
            Node::Bank(_) | Node::Customer => return,
        };
        let repeat_applied = self.variant == Variant::RefundRelayWithoutKey
            && matches!(node, Node::Cpp(_))
            && matches!(body, Body::RefundRelay { .. });
        let new = seen.insert(id);
        if new || repeat_applied {
            match node {
                Node::Dc(r) => self.dc_forward(r, from, target, body),
                Node::Cpp(r) => self.cpp_frame(r, body),
                Node::Mpp(r) => self.mpp_frame(r, body),
                Node::Bank(_) | Node::Customer => {}
            }
        }
        self.send(node, from, Msg::FrameAck { id });
    }

    pub(super) fn dc_forward(&mut self, r: u8, from: Node, target: Node, body: Body) {
        let Some(target_region) = target.region() else {
            return;
        };
        let sender = if matches!(from, Node::Dc(_)) {
            Sender::Dc
        } else {
            Sender::Cpp
        };
        let hop = match route::next_hop(&r.to_string(), sender, &target_region.to_string()) {
            Ok(NextHop::Mpp) => target,
            Ok(NextHop::RegionDc) => Node::Dc(target_region),
            Err(refusal) => {
                self.report.violations.push(format!(
                    "dc{r} refused a frame from {from:?} to {target:?}: {refusal}"
                ));
                return;
            }
        };
        self.queue_frame(Node::Dc(r), hop, target, body);
    }
}
