"""The helper classes generated code holds for Swin's ops (archc/ops/windows.py): PyTorch has no
module for shifted-window attention or patch merging, so the generated file defines them, as
torchvision's swin_transformer.py does, in the same arithmetic and with the same state_dict."""

WINDOW_ATTENTION = '''
class ShiftedWindowAttention(nn.Module):
    """Multi-head self-attention within window_size x window_size windows of a channels-last
    map [N, H, W, C], the windows shifted by shift_size (Swin's W-MSA / SW-MSA), with a learned
    bias per relative position. The map is padded to whole windows; a window made of pieces
    from both ends of the shifted map attends only within each piece."""

    def __init__(self, dim, window_size, shift_size, num_heads, attention_dropout=0.0, dropout=0.0):
        super().__init__()
        self.window_size, self.shift_size, self.num_heads = window_size, shift_size, num_heads
        self.attention_dropout, self.dropout = attention_dropout, dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.position_table(window_size, num_heads)
        # the row of the table each pair of positions in a window reads
        span = 2 * window_size - 1
        rows, cols = torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing="ij")
        rows, cols = rows.flatten(), cols.flatten()
        index = (rows[:, None] - rows[None, :] + window_size - 1) * span + cols[:, None] - cols[None, :] + window_size - 1
        self.register_buffer("relative_position_index", index.flatten())

    def position_table(self, window_size, num_heads):
        """A learned bias per relative position (2 * window_size - 1 per axis) and head."""
        span = 2 * window_size - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(span * span, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def project(self, windows):
        return self.qkv(windows)

    def scores(self, q, k):
        return (q * q.shape[-1] ** -0.5).matmul(k.transpose(-2, -1))

    def relative_position_bias(self):
        area = self.window_size * self.window_size
        bias = self.relative_position_bias_table[self.relative_position_index]
        return bias.view(area, area, -1).permute(2, 0, 1).contiguous()

    def shift_mask(self, height: int, width: int, shift_h: int, shift_w: int, like):
        """-100 between positions of a window that come from different regions of the shifted map."""
        size = self.window_size
        region = like.new_zeros(height, width)
        label = 0
        for r0, r1 in ((0, -size), (-size, -shift_h), (-shift_h, height)):      # -0 is the first row
            for c0, c1 in ((0, -size), (-size, -shift_w), (-shift_w, width)):
                region[r0:r1, c0:c1] = label
                label += 1
        region = region.view(height // size, size, width // size, size).transpose(1, 2).reshape(-1, size * size)
        return (region[:, None, :] != region[:, :, None]) * -100.0

    def forward(self, x):
        n, h, w, c = x.shape
        size, heads = self.window_size, self.num_heads
        x = F.pad(x, (0, 0, 0, -w % size, 0, -h % size))
        height, width = x.shape[1:3]
        # no shift along a dim that one window covers
        shift_h = self.shift_size if size < height else 0
        shift_w = self.shift_size if size < width else 0
        if shift_h or shift_w:
            x = torch.roll(x, shifts=(-shift_h, -shift_w), dims=(1, 2))
        windows = x.view(n, height // size, size, width // size, size, c).transpose(2, 3).reshape(-1, size * size, c)
        qkv = self.project(windows).view(windows.shape[0], size * size, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = self.scores(q, k) + self.relative_position_bias()
        if shift_h or shift_w:
            mask = self.shift_mask(height, width, shift_h, shift_w, x)
            attn = attn.view(n, mask.shape[0], heads, size * size, size * size) + mask[None, :, None]
            attn = attn.view(-1, heads, size * size, size * size)
        attn = F.dropout(attn.softmax(dim=-1), p=self.attention_dropout, training=self.training)
        out = attn.matmul(v).transpose(1, 2).reshape(-1, size * size, c)
        out = F.dropout(self.proj(out), p=self.dropout, training=self.training)
        out = out.view(n, height // size, width // size, size, size, c).transpose(2, 3).reshape(n, height, width, c)
        if shift_h or shift_w:
            out = torch.roll(out, shifts=(shift_h, shift_w), dims=(1, 2))
        return out[:, :h, :w, :].contiguous()
'''

WINDOW_ATTENTION_V2 = '''
class ShiftedWindowAttentionV2(ShiftedWindowAttention):
    """Swin V2's window attention: cosine similarity scaled by a learned, capped temperature per
    head, and a relative-position bias computed by a small MLP from log-spaced coordinates."""

    def __init__(self, dim, window_size, shift_size, num_heads, attention_dropout=0.0, dropout=0.0):
        super().__init__(dim, window_size, shift_size, num_heads, attention_dropout, dropout)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones(num_heads, 1, 1)))
        with torch.no_grad():
            self.qkv.bias[dim:2 * dim].zero_()

    def position_table(self, window_size, num_heads):
        """The MLP that makes the bias from each relative position, log-spaced in [-8, 8]."""
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True), nn.Linear(512, num_heads, bias=False))
        steps = torch.arange(-(window_size - 1), window_size, dtype=torch.float32) / (window_size - 1) * 8
        table = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), dim=-1).unsqueeze(0)
        self.register_buffer("relative_coords_table", torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0)

    def project(self, windows):
        bias = self.qkv.bias.clone()
        bias[bias.numel() // 3:2 * bias.numel() // 3] = 0       # k has no bias
        return F.linear(windows, self.qkv.weight, bias)

    def scores(self, q, k):
        cosine = F.normalize(q, dim=-1).matmul(F.normalize(k, dim=-1).transpose(-2, -1))
        return cosine * torch.clamp(self.logit_scale, max=4.605170185988092).exp()    # at most 100 (log 100)

    def relative_position_bias(self):
        area = self.window_size * self.window_size
        bias = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)[self.relative_position_index]
        return 16 * torch.sigmoid(bias.view(area, area, -1).permute(2, 0, 1).contiguous())
'''

PATCH_MERGING = '''
class PatchMerging(nn.Module):
    """Halve a channels-last map [N, H, W, C]: the four vectors of each 2x2 neighbourhood side
    by side (4C, an odd size padded), normalised, then projected to 2C (Swin)."""

    def __init__(self, dim):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim)

    @staticmethod
    def neighbours(x):
        h, w = x.shape[1:3]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        return torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)

    def forward(self, x):
        return self.reduction(self.norm(self.neighbours(x)))
'''

PATCH_MERGING_V2 = '''
class PatchMergingV2(PatchMerging):
    """Swin V2's patch merging: the four neighbours projected to 2C first, then normalised."""

    def __init__(self, dim):
        super().__init__(dim)
        self.norm = nn.LayerNorm(2 * dim)

    def forward(self, x):
        return self.norm(self.reduction(self.neighbours(x)))
'''
